#!/usr/bin/env bash
# Isolation (docs/DESIGN.md §4, §5): an application sends, through its port, one valid frame and
# one of each kind the switch must refuse: spoofed source IP, source port, protocol and
# MAC, a bad IP checksum, a bad IHL, a total length beyond the frame, broadcast,
# multicast, and an oversized slot length. Every bad one is dropped and counted under its
# reason (the last fails the port); a capture in the client namespace proves that only
# the valid frame left; a second application never receives the first one's traffic.
#
# Usage: BIN_DIR=build isolation.sh
source "$(dirname "$0")/lib.sh"
ms_setup "is$$"
ms_daemon
ms_echo "$SERVER_IP:7"  # the second application

ms_bg ip netns exec "$CLIENT_NS" tcpdump -i "$CLIENT_IF" -n -U --immediate-mode -w "$TMP/client.pcap" 'udp port 9 or tcp port 9'
tcpdump_pid=$LAST_PID
# A UDP sink on the peer's port 9: no ICMP port unreachable comes back for the valid
# frame (it would go to the sender's port, and race with its failure).
ms_bg ip netns exec "$CLIENT_NS" "$PY" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$CLIENT_IP', 9))
while True:
    s.recv(2048)
"
sleep 1  # tcpdump and the sink need a moment to attach
ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tests/ms-frame-sender" --socket "$SOCK" --mode isolation \
  --claim "$SERVER_IP:5000" --peer "$CLIENT_IP" --peer-mac "$CLIENT_MAC" >"$TMP/sender.out" 2>&1
wait_for "$TMP/sender.out" '"sent"' || { cat "$TMP/sender.out"; fail "the sender did not run"; }
sleep 0.5

stats=$(in_server "$MSCTL" --socket "$SOCK" stats --json)
"$PY" - "$stats" <<'PYEOF' || fail "counters: $stats"
import json, sys
sender = [p for p in json.loads(sys.argv[1]) if p["failed"]]
assert len(sender) == 1, "exactly the sender's port is failed"
s = sender[0]
expected = {"src_not_claimed": 3, "bad_src_mac": 1, "bad_ip_checksum": 1, "bad_header_length": 1,
            "bad_total_length": 1, "multicast": 2}
assert s["drops"] == expected, s["drops"]
assert s["ring_faults"] == {"slot_too_long": 1}, s["ring_faults"]
assert s["tx_frames"] == 1, s
others = [p for p in json.loads(sys.argv[1]) if not p["failed"]]
assert len(others) == 1 and others[0]["rx_frames"] == 0, others
PYEOF
ok "each bad frame was dropped and counted by reason; the oversized slot failed the port"
ok "the second application received none of the first one's traffic"

kill -INT "$tcpdump_pid"  # tcpdump flushes and exits
wait "$tcpdump_pid" 2>/dev/null || true
count=$(tcpdump -r "$TMP/client.pcap" -n 2>/dev/null | wc -l)
tcpdump -r "$TMP/client.pcap" -n 2>/dev/null | grep -q "$SERVER_IP.5000 > $CLIENT_IP.9: UDP" || fail "the valid frame did not arrive"
[[ "$count" -eq 1 ]] || { tcpdump -r "$TMP/client.pcap" -n -e 2>/dev/null; fail "$count frames left, expected only the valid one"; }
ok "the capture in the client namespace holds only the valid frame"
echo "isolation: all checks passed"
