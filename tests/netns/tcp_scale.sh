#!/usr/bin/env bash
# Connections at scale through one UTCP process (bench/tcp.sh scale measures
# 100k and 1M): 10k idle connections from kernel clients are all established and shown
# by msctl sockets (its snapshot bounded at 4096 records, the total counted); then 300k
# short connections are churned through a fresh utcp-echo, each echo checked, and its RSS
# must stay flat once warm: what it grows over the second half is less than the memory of
# 1 % of that half's connections (at the idle connections' measured cost each).
#
# Usage: BIN_DIR=build tcp_scale.sh
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
MANY="$ROOT/tests/netns/tcp_many.py"
IDLE=10000
CHURN=300000
SOURCES=198.18.0.10,198.18.0.11
ms_setup "sc$$"
ms_daemon
for a in ${SOURCES//,/ }; do in_client ip addr add "$a/24" dev "$CLIENT_IF"; done
in_client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7000" >"$TMP/idle.log" 2>&1
IDLE_PID=$LAST_PID
wait_for "$TMP/idle.log" "echoing" || { cat "$TMP/idle.log"; fail "utcp-echo did not start"; }
rss0=$(rss_kib "$IDLE_PID")
# At most 256 handshakes at once: a burst of 1000 could overflow the port's 1024-slot rx
# ring, and an idle client's lost final ACK leaves the server (on SYN cookies) no connection
# to count until data flows, which here it never does (CI saw 9958 of 10000 once).
coproc HOLD { in_client "$PY" "$MANY" hold "$SERVER_IP" 7000 --connections "$IDLE" --sources "$SOURCES" --pending 256; }
read -r -t 60 line <&"${HOLD[0]}" || fail "the kernel client did not report"
[[ $(jq -r .established <<<"$line") == "$IDLE" ]] || fail "want $IDLE connections: $line"
sleep 1
per_conn=$(( ($(rss_kib "$IDLE_PID") - rss0) * 1024 / IDLE ))
out=$(in_server "$MSCTL" --socket "$SOCK" sockets --json) || fail "msctl sockets: $out"
jq -e --argjson n "$IDLE" '.[0] | .total == $n + 1 and .shown == 4096 and
    ([.sockets[] | select(.state == "ESTABLISHED")] | length == 4095)' <<<"$out" >/dev/null ||
  fail "msctl sockets: want $IDLE connections and the listener counted, 4096 shown: $(jq -c '.[0] | del(.sockets)' <<<"$out")"
ok "$IDLE idle connections through one UTCP process ($per_conn bytes of RSS each); msctl sockets counts them all, shows 4096"
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2>/dev/null || true

ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7001" >"$TMP/churn.log" 2>&1
CHURN_PID=$LAST_PID
wait_for "$TMP/churn.log" "echoing" || { cat "$TMP/churn.log"; fail "utcp-echo did not start"; }
samples=()
while read -r line; do
  if jq -e 'has("failed")' <<<"$line" >/dev/null; then final=$line; else samples+=("$(rss_kib "$CHURN_PID")"); fi
done < <(timeout 240 ip netns exec "$CLIENT_NS" "$PY" "$MANY" churn "$SERVER_IP" 7001 --connections "$CHURN" \
           --every $((CHURN / 10)) --sources "$SOURCES")
[[ $(jq -r .done <<<"${final:-{\}}") == "$CHURN" ]] || fail "churn: ${final:-no result}"
half=${samples[4]}  # after 50 %
growth_kib=$(( samples[-1] - half ))
bound_kib=$(( per_conn * CHURN / 2 / 100 / 1024 ))
((growth_kib < bound_kib)) || fail "RSS grew by $growth_kib KiB over the second half of the churn (samples: ${samples[*]} KiB); want under $bound_kib KiB"
ok "$CHURN connections churned, every echo checked; RSS from 50 % to the end: $half -> ${samples[-1]} KiB (bound $bound_kib KiB; samples ${samples[*]})"
