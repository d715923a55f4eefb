#!/usr/bin/env bash
# SYN cookies under a flood (RFC 4987): ms-syn-flood sends 100k SYNs a second
# from the client namespace to utcp-echo's listener (through multistackd) for 5 s, from
# SUBNET.77, an address no host has (the server's neighbour table points it at the client's
# MAC, whose kernel drops the SYN,ACKs: nobody resets, as in a spoofed flood); meanwhile
# 200 kernel clients connect and echo 10 KB each, byte-exact. The listener's SYN queue
# overflows and UTCP answers with cookies; legitimate handshakes complete through them.
#
# Usage: BIN_DIR=build syn_flood.sh
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
FLOOD="$BIN_DIR/tests/ms-syn-flood"
PEER="$ROOT/tests/netns/tcp_peer.py"
[[ -x "$FLOOD" ]] || fail "no $FLOOD: build the ms-syn-flood target"
ms_setup "sf$$"
ms_daemon
ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7000" >"$TMP/utcp.log" 2>&1
UTCP_PID=$LAST_PID
wait_for "$TMP/utcp.log" "echoing" || { cat "$TMP/utcp.log"; fail "utcp-echo did not start"; }

SUBNET=${SERVER_IP%.*}
in_server ip neigh replace "$SUBNET.77" lladdr "$CLIENT_MAC" dev "$SERVER_IF" nud permanent
ms_bg ip netns exec "$CLIENT_NS" "$FLOOD" --dev "$CLIENT_IF" --src "$SUBNET.77" --src-mac "$CLIENT_MAC" \
  --dst "$SERVER_IP" --dst-mac "$SERVER_MAC" --port 7000 --rate "${FLOOD_RATE:-100000}" --seconds 5 >"$TMP/flood.json"
FLOOD_PID=$LAST_PID
sleep 1  # the SYN queue is full by now
out=$(timeout 60 ip netns exec "$CLIENT_NS" "$PY" "$PEER" client "$SERVER_IP" 7000 --bytes 10240 --connections 200) ||
  fail "legitimate clients failed during the flood: $out"
wait "$FLOOD_PID" || fail "ms-syn-flood failed"
rate=$(jq .per_second "$TMP/flood.json")
ok "200 legitimate connections echoed 10 KB each, byte-exact, during a flood of $(jq .sent "$TMP/flood.json") SYNs ($rate a second)"
(($(jq '.per_second >= 100000 * 0.9' "$TMP/flood.json" | grep -c true) == 1)) ||
  echo "note: the flood reached $rate SYN/s on this machine, short of 100000"

kill -TERM "$UTCP_PID"
wait "$UTCP_PID" || fail "utcp-echo did not exit cleanly"
summary=$(tail -1 "$TMP/utcp.log")
sent=$(jq .syn_cookies_sent <<<"$summary")
accepted=$(jq .syn_cookies_accepted <<<"$summary")
((sent > 0)) || fail "no SYN cookies were sent: $summary"
((accepted > 0)) || fail "no connection came through a cookie: $summary"
ok "UTCP answered $sent SYNs with cookies; $accepted connections came through them; $(jq .syn_queue_full <<<"$summary") SYNs found the queue full"
echo "PASS"
