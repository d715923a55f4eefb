#!/usr/bin/env bash
# UTCP against the Linux kernel's TCP across the veth.
# multistackd runs on the server veth. utcp-echo serves on SERVER_IP:7000 through it,
# and a kernel echo server (tests/netns/tcp_peer.py) runs in the client namespace.
#   - kernel client -> UTCP server, and UTCP client -> kernel server: 1 KB, 1 MB and
#     100 MB, checked by SHA-256 (utcp-echo also checks every byte);
#   - 1000 concurrent connections each way;
#   - a half close in each direction;
#   - the kernel peer resetting mid-transfer, both ways; the UTCP server keeps serving.
#
# Usage: BIN_DIR=build tcp_interop.sh
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
ms_setup "ti$$"
ms_daemon

interop_start "$SERVER_IP" "$CLIENT_IP"

# The options both ways: the kernel asks for ECN (tcp_ecn=1) and offers SACK, timestamps
# and window scaling; UTCP agrees to each, and offers the same in its own SYN.
in_client sysctl -qw net.ipv4.tcp_ecn=1
ms_bg ip netns exec "$CLIENT_NS" tcpdump -i "$CLIENT_IF" -n -v -l 'tcp[tcpflags] & tcp-syn != 0' >"$TMP/syn.txt" 2>"$TMP/syn.log"
TCPDUMP_PID=$LAST_PID
wait_for "$TMP/syn.log" "listening on" || fail "tcpdump did not start"
kernel_client --bytes 1024 >/dev/null || fail "kernel client -> UTCP server, 1 KB"
utcp_client --connect "$CLIENT_IP:7001" --bytes 1024 >/dev/null || fail "UTCP client -> kernel server, 1 KB"
sleep 0.5
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
# Each SYN and SYN,ACK: its direction, ECN flags, and the four options.
syn_has() {  # FROM_IP FLAGS
  grep -A1 -F "$1." "$TMP/syn.txt" | tr -d '\n' | grep -F "Flags [$2]" | grep -q 'sackOK.*TS val.*wscale\|wscale.*sackOK.*TS val\|sackOK.*wscale.*TS val\|TS val.*sackOK.*wscale'
}
for want in "$CLIENT_IP SEW" "$SERVER_IP S.E" "$SERVER_IP SEW" "$CLIENT_IP S.E"; do
  syn_has $want || { cat "$TMP/syn.txt" "$TMP/syn.log"; fail "no SYN from ${want% *} with flags [${want#* }], SACK, timestamps and window scale"; }
done
ok "SYNs both ways: ECN (SEW / S.E), SACK, timestamps and window scale negotiated with the kernel"

interop_sizes "IPv4"

# Bulk data left UTCP as super-segments, which the interface's own GSO cut.
st=$(ip netns exec "$SERVER_NS" "$MSCTL" --socket "$SOCK" status --json)
[[ $(jq -r .segmentation_offload <<<"$st") == true ]] || fail "multistackd offers no segmentation offload: $st"
offloaded=$(jq -r .nic.tx_offloaded <<<"$st")
((offloaded > 1000)) || fail "only $offloaded super-segments reached the interface's GSO: $st"
supers=$(jq -r .super_segments_out <<<"$out")
((supers > 1000)) || fail "the UTCP client sent only $supers super-segments for 100 MB: $out"
by_ref=$(jq -r .super_segments_by_reference <<<"$out")
((by_ref * 10 >= supers * 9)) || fail "only $by_ref of $supers super-segments went by reference to the send buffer: $out"
ok "super-segments: the UTCP client sent $supers for 100 MB ($by_ref with their payload by reference), $offloaded went to the interface's GSO whole"
segs_in=$(jq -r .tcp_segments_in <<<"$out")
trains=$(jq -r .train_segments_in <<<"$out")
((trains * 4 >= segs_in)) || fail "only $trains of $segs_in segments received were taken in trains: $out"
ok "receive coalescing: the UTCP client took $trains of its $segs_in segments in as continuations of trains"

out=$(kernel_client --bytes 10000 --connections 1000) || fail "1000 kernel clients: $out"
ok "1000 concurrent kernel connections to the UTCP server, all byte-exact"
out=$(utcp_client --connect "$CLIENT_IP:7001" --bytes 10000 --connections 1000) || fail "1000 UTCP clients: $out"
ok "1000 concurrent UTCP connections to the kernel server, all byte-exact"

interop_closes "IPv4"

kill -TERM "$UTCP_PID"
wait "$UTCP_PID" || fail "utcp-echo did not exit cleanly"
summary=$(tail -1 "$TMP/utcp.log")
resets=$(jq -r '.errors["connection reset"] // 0' <<<"$summary")
((resets >= 1)) || fail "the UTCP server did not count the reset: $summary"
ok "UTCP server counters: $summary"

# multistackd killed under a running UTCP application: the application notices at once,
# waits, and attaches again to the next daemon (daemon_restart.sh tests this under load).
ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7003" >"$TMP/utcp2.log" 2>&1
UTCP2_PID=$LAST_PID
wait_for "$TMP/utcp2.log" "echoing" || fail "second utcp-echo did not start"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
wait_for "$TMP/utcp2.log" "multistackd went away: attaching again" || fail "utcp-echo did not notice: $(cat "$TMP/utcp2.log")"

# Without the interface's GSO the switch cuts super-segments itself, checksums included.
ms_daemon --no-segmentation-offload
wait_for "$TMP/utcp2.log" "attached again" || fail "utcp-echo did not attach again: $(cat "$TMP/utcp2.log")"
ok "multistackd killed: the UTCP application notices at once and attaches again to the next daemon"
kill "$UTCP2_PID"
out=$(utcp_client --connect "$CLIENT_IP:7001" --bytes 20971520) || fail "UTCP client, software segmentation: $out"
[[ $(jq -r .sent_sha256 <<<"$out") == $(jq -r .received_sha256 <<<"$out") ]] || fail "hashes differ: $out"
st=$(ip netns exec "$SERVER_NS" "$MSCTL" --socket "$SOCK" status --json)
[[ $(jq -r '.segmentation_offload, .nic.tx_offloaded' <<<"$st" | tr '\n' ' ') == "false 0 " ]] || fail "offload not off: $st"
(($(jq -r .super_segments_out <<<"$out") > 100)) || fail "no super-segments sent: $out"
ok "--no-segmentation-offload: 20 MB of super-segments cut by the switch reach the kernel byte-exact"
out=$(utcp_client --connect "$CLIENT_IP:7001" --bytes 1048576 --no-super-segments) || fail "--no-super-segments: $out"
(($(jq -r .super_segments_out <<<"$out") == 0)) || fail "--no-super-segments sent super-segments: $out"
ok "utcp-echo --no-super-segments sends one frame per segment"
echo "PASS"
