#!/usr/bin/env bash
# Fault injection (multistackd --fault): a malformed spec is refused with a clear
# message; with loss=0.5, about half of the datagrams sent to an application on a port
# are lost before it sees them, and msctl counts them as fault_injected.
#
# Usage: BIN_DIR=build fault.sh
source "$(dirname "$0")/lib.sh"
ms_setup "fa$$"

if out=$(in_server "$MSD" --iface "$SERVER_IF" --socket "$TMP/x.sock" --fault "loss=3" 2>&1); then fail "accepted loss=3"; fi
grep -q "fault" <<<"$out" || fail "unclear error: $out"
ok "a malformed fault spec is refused: $out"

ms_daemon --fault "loss=0.5,seed=3"
ms_echo "$SERVER_IP:7"
answered=$(py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
answered = 0
for i in range(200):
    s.sendto(b'%d' % i, ('$SERVER_IP', 7))
    try:
        while s.recvfrom(100)[0] != b'%d' % i:
            pass
        answered += 1
    except socket.timeout:
        pass
print(answered)
")
((answered > 50 && answered < 150)) || fail "$answered of 200 answered with loss=0.5"
lost=$(in_server "$MSCTL" --socket "$SOCK" stats --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)[0]['drops'].get('fault_injected', 0))")
((lost + answered == 200)) || fail "$lost counted as fault_injected, $answered answered, of 200"
ok "loss=0.5: $answered of 200 datagrams answered, $lost counted as fault_injected"
echo "fault: all checks passed"
