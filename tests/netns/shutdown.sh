#!/usr/bin/env bash
# Start and stop: multistackd refuses a missing interface and a second instance on the
# same interface, with clear messages; after SIGTERM no XDP program is left and the
# kernel handles everything again; a restarted daemon attaches cleanly and serves.
#
# Usage: BIN_DIR=build shutdown.sh
source "$(dirname "$0")/lib.sh"
ms_setup "sd$$"

if out=$(in_server "$MSD" --iface nosuchif0 --socket "$TMP/x.sock" 2>&1); then fail "started on a missing interface"; fi
grep -q "no such interface" <<<"$out" || fail "unclear error for a missing interface: $out"
ok "a missing interface is refused: $out"

echo_round_trip() {
  py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'ping', ('$SERVER_IP', 7))
assert s.recvfrom(100)[0] == b'ping'
"
}

ms_daemon
if out=$(in_server "$MSD" --iface "$SERVER_IF" --socket "$TMP/second.sock" 2>&1); then fail "a second daemon started"; fi
grep -q "another multistackd owns $SERVER_IF" <<<"$out" || fail "unclear error for a second daemon: $out"
ok "a second daemon on the same interface is refused: $out"

# An application that exits cleanly releases its claim, and the tuple is free again.
ms_echo "$SERVER_IP:7"
kill -TERM "$ECHO_PID"
wait "$ECHO_PID" || { cat "$TMP/echo.log"; fail "ms-udp-echo did not release cleanly"; }
grep -q "port 0 releases udp $SERVER_IP:7" "$TMP/daemon.log" || fail "the daemon saw no release"
if in_server "$MSCTL" --socket "$SOCK" claims | grep -q ":7\$"; then fail "the released claim is still listed"; fi
ok "a released claim is gone, and releasing it twice says not found"

ms_echo "$SERVER_IP:7"
echo_round_trip || fail "echo before shutdown"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "multistackd exited with an error on SIGTERM"
grep -q "detached from" "$TMP/daemon.log" || fail "no clean shutdown in the log"
if ip -n "$SERVER_NS" -d link show "$SERVER_IF" | grep -q 'prog/xdp'; then fail "an XDP program is left"; fi
[[ ! -e "$SOCK" ]] || fail "the control socket is left behind"
ok "after SIGTERM no XDP program and no socket are left"

py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(('$SERVER_IP', 7))
s.send(b'anyone?')
try:
    s.recv(100)
    raise SystemExit('still answered')
except ConnectionRefusedError:
    pass
" || fail "the kernel does not own UDP 7 again"
ok "the kernel handles UDP 7 again (port unreachable)"

kill -TERM "$ECHO_PID" 2>/dev/null || true
ms_daemon
ms_echo "$SERVER_IP:7"
echo_round_trip || fail "echo after restart"
ok "a restarted daemon attaches cleanly and serves"
echo "shutdown: all checks passed"
