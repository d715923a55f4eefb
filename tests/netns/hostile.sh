#!/usr/bin/env bash
# A hostile application (docs/DESIGN.md §5): for 10 s it attaches again and again and writes
# random garbage into its ring indices, slots and lengths. The daemon must not crash, and
# another port's traffic goes on intact over the same 10 s: every datagram sent to the
# echo application comes back byte-exact (payloads carry a sequence number and a hash).
#
# Usage: BIN_DIR=build hostile.sh
source "$(dirname "$0")/lib.sh"
ms_setup "ho$$"
ms_daemon
ms_echo "$SERVER_IP:7"
seconds=${MS_HOSTILE_SECONDS:-10}

ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tests/ms-frame-sender" --socket "$SOCK" --mode hostile \
  --claim "$SERVER_IP:6000" --seconds "$seconds" >"$TMP/hostile.out" 2>&1
hostile_pid=$LAST_PID

py_client "
import hashlib, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
sent = back = 0
end = time.monotonic() + $seconds
while time.monotonic() < end:
    body = b'%08d' % sent
    msg = body + hashlib.sha256(body).digest()
    s.sendto(msg, ('$SERVER_IP', 7))
    sent += 1
    data, _ = s.recvfrom(2048)
    assert data == msg, 'corrupted echo %r' % data
    back += 1
    time.sleep(0.005)
print('echoed %d of %d datagrams intact' % (back, sent))
assert back == sent and sent > 100
" >"$TMP/client.out" || { cat "$TMP/client.out"; fail "traffic on the other port was disturbed"; }
ok "$(cat "$TMP/client.out") while the hostile application ran"

wait "$hostile_pid" || { cat "$TMP/hostile.out"; fail "the hostile application failed"; }
ok "hostile application: $(cat "$TMP/hostile.out")"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "multistackd died"
in_server "$MSCTL" --socket "$SOCK" status >/dev/null || fail "multistackd does not answer"
ok "multistackd is alive and answers"
echo "hostile: all checks passed"
