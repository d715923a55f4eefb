#!/usr/bin/env bash
# Restarts and upgrades of multistackd under open connections (docs/DESIGN.md §6,
# "Restarts and upgrades"). A UTCP server (utcp-echo) holds N idle connections from the
# kernel's client, and ms-udp-echo is probed every millisecond (tests/netns/udp_probe.py:
# the longest silence between two echoes is how long the path was out). Then, ROUNDS times:
#   - a planned upgrade (multistackd --upgrade): the blackout on the wire, and each
#     application's own count from hang-up to attached again;
#   - a crash (SIGKILL) and a new daemon after each outage of OUTAGES (seconds, within the
#     10 s outage limit): whether every connection survived.
# After each, every one of the N connections echoes 16 bytes, checked. The same upgrade
# with no connection open is the reference, measured in the same run. Writes
# bench/results/restart.json. Needs root.
#
# Usage: bench/restart.sh [--connections N] [--rounds R] [--outages "1 2 5 9"]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/restart.sh needs root (namespaces, XDP)" >&2; exit 1; }
CONNECTIONS=10000
ROUNDS=3
OUTAGES="1 2 5 9"
while (($#)); do
  case $1 in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --outages) OUTAGES=$2; shift 2 ;;
    *) echo "usage: bench/restart.sh [--connections N] [--rounds R] [--outages \"S ...\"]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh jq
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd utcp-echo ms-udp-echo msctl >/dev/null
mkdir -p bench/results
BIN_DIR=build
source tests/netns/lib.sh
SOURCES=198.18.0.10,198.18.0.11
ms_setup "rb$$"
ms_daemon --outage-limit-ms 10000
for a in ${SOURCES//,/ }; do in_client ip addr add "$a/24" dev "$CLIENT_IF"; done
ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tools/utcp-echo" --socket "$SOCK" --listen "$SERVER_IP:7000" >"$TMP/utcp.log" 2>&1
wait_for "$TMP/utcp.log" "echoing" || fail "utcp-echo did not start"
ms_echo "$SERVER_IP:7007"

# upgrade: a planned upgrade under the probe; sets SILENCE, the longest silence (ms), and
# APPS, the applications' own outage (ms, the largest).
upgrade() {
  in_client "$PY" "$ROOT/tests/netns/udp_probe.py" "$SERVER_IP" 7007 2 >"$TMP/probe.out" 2>&1 &
  local probe=$!
  sleep 0.7
  mv "$TMP/daemon.log" "$TMP/daemon.old"
  local before
  before=$(cat "$TMP/utcp.log" "$TMP/echo.log" | grep -c "attached again" || true)
  ms_daemon --outage-limit-ms 10000 --upgrade
  wait "$probe" || fail "the probe lost datagrams: $(cat "$TMP/probe.out")"
  for _ in $(seq 100); do
    (($(cat "$TMP/utcp.log" "$TMP/echo.log" | grep -c "attached again") >= before + 2)) && break
    sleep 0.05
  done
  local apps
  apps=$(cat "$TMP/utcp.log" "$TMP/echo.log" | grep -o "attached again after [0-9]* ms" | tail -2 | awk '{print $4}' | sort -n | tail -1)
  SILENCE=$(jq .longest_silence_ms "$TMP/probe.out")
  APPS=${apps:-0}
}
# check: every held connection echoes; prints how many failed.
check() {
  echo check >&"${HOLD[1]}"
  local line
  read -r -t 60 line <&"${HOLD[0]}" || fail "the held connections did not report"
  jq .failed <<<"$line"
}

results="$TMP/results.jsonl"
: >"$results"
for round in $(seq "$ROUNDS"); do
  upgrade
  echo "{\"kind\": \"upgrade\", \"connections\": 0, \"round\": $round, \"blackout_ms\": $SILENCE, \"application_ms\": $APPS}" >>"$results"
  echo "upgrade, no connection: blackout $SILENCE ms on the wire, $APPS ms for the applications"
done
coproc HOLD { in_client "$PY" "$ROOT/tests/netns/tcp_many.py" hold "$SERVER_IP" 7000 --connections "$CONNECTIONS" --sources "$SOURCES" --pending 256; }
read -r -t 120 line <&"${HOLD[0]}" || fail "the kernel client did not report"
[[ $(jq -r .established <<<"$line") == "$CONNECTIONS" ]] || fail "want $CONNECTIONS connections: $line"
[[ $(check) == 0 ]] || fail "the held connections do not echo before any restart"
for round in $(seq "$ROUNDS"); do
  upgrade
  failed=$(check)
  echo "{\"kind\": \"upgrade\", \"connections\": $CONNECTIONS, \"round\": $round, \"blackout_ms\": $SILENCE, \"application_ms\": $APPS, \"connections_failed\": $failed}" >>"$results"
  echo "upgrade, $CONNECTIONS connections: blackout $SILENCE ms on the wire, $APPS ms for the applications; $failed connections failed"
done
for outage in $OUTAGES; do
  kill -KILL "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  sleep "$outage"
  mv "$TMP/daemon.log" "$TMP/daemon.old"
  ms_daemon --outage-limit-ms 10000
  failed=$(check)
  echo "{\"kind\": \"crash\", \"connections\": $CONNECTIONS, \"outage_s\": $outage, \"connections_failed\": $failed}" >>"$results"
  echo "SIGKILL, a new daemon after $outage s: $failed of $CONNECTIONS connections failed"
done
exec {HOLD[1]}>&-
jq -s --arg date "$(date -u +%FT%TZ)" --argjson connections "$CONNECTIONS" \
  '{date: $date, connections: $connections, target_blackout_ms: 50,
    runs: .,
    upgrade_blackout_ms: {no_connections: [.[] | select(.kind == "upgrade" and .connections == 0) | .blackout_ms],
                          with_connections: [.[] | select(.kind == "upgrade" and .connections > 0) | .blackout_ms]},
    longest_crash_outage_survived_s: ([.[] | select(.kind == "crash" and .connections_failed == 0) | .outage_s] | max)}' \
  "$results" >bench/results/restart.json
cat bench/results/restart.json
