#!/usr/bin/env bash
# Namespace sharing (docs/DESIGN.md §3): claims are proved by kernel sockets, so the kernel's
# rules hold for user-level stacks and legacy applications alike.
#  - a claim on a port that a kernel application holds fails with "address in use";
#  - a kernel application binding a claimed port gets EADDRINUSE;
#  - an unprivileged application cannot claim a port below 1024 (and can above);
#  - an application killed with SIGKILL has its claim and the kernel port freed within
#    100 ms, measured.
#
# Usage: BIN_DIR=build namespace.sh
source "$(dirname "$0")/lib.sh"
ms_setup "ns$$"
ms_daemon --group nogroup

# A kernel application holds UDP 5353; the claim must fail.
ms_bg ip netns exec "$SERVER_NS" "$PY" -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$SERVER_IP', 5353))
open('$TMP/kernel-bound', 'w').write('bound')
time.sleep(600)
"
wait_for "$TMP/kernel-bound" "bound" || fail "kernel application did not bind"
if out=$(in_server "$ECHO_APP" --socket "$SOCK" --listen "$SERVER_IP:5353" 2>&1); then fail "claimed a port the kernel holds"; fi
grep -q "address in use" <<<"$out" || fail "unexpected error: $out"
ok "a claim on a port a kernel application holds fails: $out"

# A claimed port is closed to kernel applications, on its address and on the wildcard.
ms_echo "$SERVER_IP:7"
py_server "
import errno, socket
for addr in ('$SERVER_IP', '0.0.0.0'):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((addr, 7))
        raise SystemExit('kernel bound claimed udp %s:7' % addr)
    except OSError as e:
        assert e.errno == errno.EADDRINUSE, e
" || fail "kernel bind of a claimed port"
ok "a kernel application binding the claimed port gets EADDRINUSE"

# Unprivileged: run a copy of the application as nobody (the build tree may be private).
cp "$ECHO_APP" "$TMP/ms-udp-echo"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
if out=$(in_server "${as_nobody[@]}" "$TMP/ms-udp-echo" --socket "$SOCK" --listen "$SERVER_IP:80" 2>&1); then
  fail "nobody claimed port 80"
fi
grep -q "permission denied" <<<"$out" || fail "unexpected error for nobody on port 80: $out"
ok "an unprivileged application cannot claim port 80: $out"
ECHO_APP="$TMP/ms-udp-echo" ms_echo "$SERVER_IP:8053" "${as_nobody[@]}"
grep -q "uid 65534" "$TMP/daemon.log" || fail "the daemon did not log the peer's uid"
ok "the same application as nobody claims port 8053, and the daemon logs its uid"

# A wildcard claim with an ephemeral port: the kernel picks the port, and the claim
# covers the interface's address.
ms_echo "0.0.0.0:0"
eport=$(grep -o 'echoes udp 0.0.0.0:[0-9]*' "$TMP/echo.log" | cut -d: -f2)
[[ -n "$eport" && "$eport" != 0 ]] || fail "no ephemeral port in: $(cat "$TMP/echo.log")"
py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'wild', ('$SERVER_IP', $eport))
assert s.recvfrom(100)[0] == b'wild'
" || fail "echo on the wildcard claim 0.0.0.0:$eport"
ok "a wildcard claim of an ephemeral port (0.0.0.0:$eport, picked by the kernel) answers on $SERVER_IP"

# SIGKILL: the claim and the kernel port are free within 100 ms.
ms_echo "$SERVER_IP:7000"
victim=$ECHO_PID
ms=$(py_server "
import os, signal, socket, time
t0 = time.monotonic()
os.kill($victim, signal.SIGKILL)
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(('$SERVER_IP', 7000))
        break
    except OSError:
        s.close()
        if time.monotonic() - t0 > 5:
            raise SystemExit('port still held after 5 s')
        time.sleep(0.001)
print('%.1f' % ((time.monotonic() - t0) * 1000))
") || fail "the killed application's port was not freed"
"$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 100 else 1)" "$ms" || fail "port freed only after $ms ms"
if in_server "$MSCTL" --socket "$SOCK" claims | grep -q ":7000"; then fail "the claim outlived its application"; fi
ok "a SIGKILLed application's claim and kernel port were free after $ms ms"
echo "namespace: all checks passed"
