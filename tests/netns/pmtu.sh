#!/usr/bin/env bash
# Path MTU discovery through the switch (issue 13): a router namespace between UTCP and a
# far host, whose link to the far host has a smaller MTU (1280) than the UTCP side (1500).
# The far host advertises an MSS of 1460 anyway (route advmss), as a host behind such a
# link does, so only the path can tell UTCP that its segments are too large.
#   - with ICMP: the router answers each too-large segment with "fragmentation needed"; the
#     XDP program and the switch deliver it to the UTCP port whose segment it quotes, the
#     connection lowers its MSS to 1240, and a 10 MB echo completes byte-exact;
#   - without ICMP (a tc program on the router drops every "fragmentation needed"): UTCP's
#     black-hole detection (RFC 4821) lowers the MSS after timeouts, and the same 10 MB
#     echo completes byte-exact;
#   - the kernel keeps answering pings on the server (ICMP echo is not redirected).
#
# Usage: BIN_DIR=build pmtu.sh
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
DROP="$BIN_DIR/tests/ms-drop"
PEER="$ROOT/tests/netns/tcp_peer.py"
BYTES=$((10 * 1024 * 1024))
ms_setup "pm$$"

# The client namespace becomes the router; the far host sits behind it on a 1280-byte link.
FAR_NS="ms-pm$$-far"
ROUTER_FAR_IF="mspm$$-r"
FAR_IF="mspm$$-f"
ROUTER_FAR_IP=198.19.0.1
FAR_IP=198.19.0.2
trap 'ip netns del "$FAR_NS" 2>/dev/null || true; ms_cleanup' EXIT
ip netns add "$FAR_NS"
ip link add "$ROUTER_FAR_IF" netns "$CLIENT_NS" type veth peer name "$FAR_IF" netns "$FAR_NS"
ip -n "$CLIENT_NS" addr add "$ROUTER_FAR_IP/24" dev "$ROUTER_FAR_IF"
ip -n "$FAR_NS" addr add "$FAR_IP/24" dev "$FAR_IF"
for dev in "$CLIENT_NS $ROUTER_FAR_IF" "$FAR_NS $FAR_IF"; do
  set -- $dev
  ip -n "$1" link set "$2" mtu 1280 up
done
ip -n "$FAR_NS" link set lo up
ip netns exec "$FAR_NS" ethtool -K "$FAR_IF" tx off >/dev/null  # full checksums, as on the client side
in_client sysctl -qw net.ipv4.ip_forward=1
ip -n "$FAR_NS" route add 198.18.0.0/24 via "$ROUTER_FAR_IP" advmss 1460
ip -n "$SERVER_NS" route add 198.19.0.0/24 via "$CLIENT_IP"

ms_daemon
ms_bg ip netns exec "$FAR_NS" "$PY" "$PEER" server "$FAR_IP" 7001 >"$TMP/far-echo.log" 2>&1
wait_for "$TMP/far-echo.log" "listening" || fail "the far host's echo server did not start"

# One 10 MB echo from UTCP to the far host; prints utcp-echo's JSON.
transfer() { timeout 120 ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --connect "$FAR_IP:7001" --bytes "$BYTES"; }
# check_transfer JSON: byte-exact, and the MSS the connection ended with is at most $1.
check_transfer() {
  local out=$1 max_mss=$2
  [[ $(jq -r .ok <<<"$out") == true ]] || fail "the transfer failed: $out"
  [[ $(jq -r .sent_sha256 <<<"$out") == $(jq -r .received_sha256 <<<"$out") ]] || fail "hashes differ: $out"
  local mss
  mss=$(jq .path.smallest_send_mss <<<"$out")
  ((mss > 0 && mss <= max_mss)) || fail "the connection's MSS is $mss, not at most $max_mss: $out"
}

out=$(transfer) || fail "10 MB through the 1280-byte link with ICMP: $out"
check_transfer "$out" 1240
path=$(jq -c .path <<<"$out")
(($(jq .mss_lowered_by_icmp <<<"$path") >= 1)) || fail "the MSS was not lowered by ICMP: $path"
(($(jq .icmp_in <<<"$path") >= 1)) || fail "no ICMP reached UTCP: $path"
(($(jq .icmp_out_of_window <<<"$path") == 0)) || fail "the router's own errors were taken as out of window: $path"
ok "with ICMP: 10 MB echoed byte-exact in $(jq .seconds <<<"$out") s; the router's 'fragmentation needed' reached UTCP and the MSS fell from 1460 to $(jq .smallest_send_mss <<<"$path"): $path"

# The router's "fragmentation needed" towards the server is dropped: a black hole.
ms_bg ip netns exec "$CLIENT_NS" "$DROP" --dev "$CLIENT_IF" --egress --packets icmp-too-big --loss 100 \
  >"$TMP/drop.json" 2>"$TMP/drop.log"
drop_pid=$LAST_PID
wait_for "$TMP/drop.log" "dropping" || { cat "$TMP/drop.log"; fail "ms-drop did not attach"; }
out=$(transfer) || fail "10 MB through the 1280-byte link without ICMP: $out"
kill -TERM "$drop_pid"
wait "$drop_pid" || fail "ms-drop did not detach cleanly"
dropped=$(jq .dropped "$TMP/drop.json")
((dropped > 0)) || fail "the router sent no 'fragmentation needed' to drop: $(cat "$TMP/drop.json")"
check_transfer "$out" 1024
path=$(jq -c .path <<<"$out")
(($(jq .mss_lowered_by_timeouts <<<"$path") >= 1)) || fail "black-hole detection did not lower the MSS: $path"
ok "without ICMP ($dropped 'fragmentation needed' dropped): 10 MB echoed byte-exact in $(jq .seconds <<<"$out") s; black-hole detection lowered the MSS to $(jq .smallest_send_mss <<<"$path"): $path"

# ICMP that quotes nothing of ours stays with the kernel: it answers pings.
in_client ping -c 2 -W 2 -q "$SERVER_IP" >/dev/null || fail "the server's kernel did not answer a ping"
ok "pings to the server are answered by its kernel"
echo "PASS"
