#!/usr/bin/env bash
# Restarts and upgrades of multistackd under open connections (docs/DESIGN.md §6,
# "Restarts and upgrades", "Hand-over"). A UTCP server (utcp-echo) holds N idle
# connections from the kernel's client, and ms-udp-echo is probed every millisecond
# (tests/netns/udp_probe.py: the longest silence between two echoes is how long the path
# was out). Then, ROUNDS times:
#   - a planned upgrade (multistackd --upgrade, a hand-over): the blackout on the wire, the
#     old daemon's own count, and whether any application noticed (attached again);
#   - the upgrade by a restart (SIGUSR2, a new daemon: what the systemd unit's restart
#     does): the blackout, and each application's count from hang-up to attached again;
#   - a crash (SIGKILL) and a new daemon after each outage of OUTAGES (seconds, within the
#     10 s outage limit): whether every connection survived.
# After each, every one of the N connections echoes 16 bytes, checked. The same upgrades
# with no connection open are the reference, measured in the same run. Writes
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

# probe_start: the UDP probe for 2 s, in the background (PROBE).
probe_start() {
  in_client "$PY" "$ROOT/tests/netns/udp_probe.py" "$SERVER_IP" 7007 2 >"$TMP/probe.out" 2>&1 &
  PROBE=$!
  sleep 0.7
}
# probe_wait: waits for the probe; sets SILENCE, its longest silence (ms).
probe_wait() {
  wait "$PROBE" || fail "the probe lost datagrams: $(cat "$TMP/probe.out")"
  SILENCE=$(jq .longest_silence_ms "$TMP/probe.out")
}
attached_again() { cat "$TMP/utcp.log" "$TMP/echo.log" | grep -c "attached again" || true; }

# hand_over: a planned upgrade (multistackd --upgrade, a hand-over) under the probe; sets
# SILENCE, the longest silence (ms), GIVER, the old daemon's own count from stopping its
# workers to the new one's answer (ms), and NOTICED, how many applications attached again
# (none should: they keep their sessions).
hand_over() {
  probe_start
  mv "$TMP/daemon.log" "$TMP/daemon.old"
  local before
  before=$(attached_again)
  ms_daemon --outage-limit-ms 10000 --upgrade
  probe_wait
  for _ in $(seq 50); do grep -q "handed over" "$TMP/daemon.old" && break; sleep 0.05; done
  GIVER=$(grep -o "claim(s) in [0-9]* ms" "$TMP/daemon.old" | awk '{print $3}')
  NOTICED=$(($(attached_again) - before))
}

# restart: the upgrade by a restart (SIGUSR2, then a new daemon, as the systemd unit's
# restart does) under the probe; sets SILENCE and APPS, the applications' own outage (ms,
# the largest), from hang-up to attached again.
restart() {
  probe_start
  local before
  before=$(attached_again)
  kill -USR2 "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  mv "$TMP/daemon.log" "$TMP/daemon.old"
  ms_daemon --outage-limit-ms 10000
  probe_wait
  for _ in $(seq 100); do
    (($(attached_again) >= before + 2)) && break
    sleep 0.05
  done
  APPS=$(cat "$TMP/utcp.log" "$TMP/echo.log" | grep -o "attached again after [0-9]* ms" | tail -2 | awk '{print $4}' | sort -n | tail -1)
  APPS=${APPS:-0}
}

# upgrade_round CONNECTIONS ROUND: a hand-over and a restart, each recorded (and, with
# connections, every one checked after it).
upgrade_round() {
  local connections=$1 round=$2 failed=0
  hand_over
  ((connections > 0)) && failed=$(check)
  echo "{\"kind\": \"hand_over\", \"connections\": $connections, \"round\": $round, \"blackout_ms\": $SILENCE, \"giver_ms\": $GIVER, \"applications_that_attached_again\": $NOTICED, \"connections_failed\": $failed}" >>"$results"
  echo "hand-over, $connections connections: blackout $SILENCE ms on the wire, $GIVER ms in the old daemon, $NOTICED applications noticed; $failed connections failed"
  restart
  ((connections > 0)) && failed=$(check)
  echo "{\"kind\": \"restart\", \"connections\": $connections, \"round\": $round, \"blackout_ms\": $SILENCE, \"application_ms\": $APPS, \"connections_failed\": $failed}" >>"$results"
  echo "restart, $connections connections: blackout $SILENCE ms on the wire, $APPS ms for the applications; $failed connections failed"
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
for round in $(seq "$ROUNDS"); do upgrade_round 0 "$round"; done
coproc HOLD { in_client "$PY" "$ROOT/tests/netns/tcp_many.py" hold "$SERVER_IP" 7000 --connections "$CONNECTIONS" --sources "$SOURCES" --pending 256; }
read -r -t 120 line <&"${HOLD[0]}" || fail "the kernel client did not report"
[[ $(jq -r .established <<<"$line") == "$CONNECTIONS" ]] || fail "want $CONNECTIONS connections: $line"
[[ $(check) == 0 ]] || fail "the held connections do not echo before any restart"
for round in $(seq "$ROUNDS"); do upgrade_round "$CONNECTIONS" "$round"; done
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
    hand_over_blackout_ms: {no_connections: [.[] | select(.kind == "hand_over" and .connections == 0) | .blackout_ms],
                            with_connections: [.[] | select(.kind == "hand_over" and .connections > 0) | .blackout_ms]},
    restart_blackout_ms: {no_connections: [.[] | select(.kind == "restart" and .connections == 0) | .blackout_ms],
                          with_connections: [.[] | select(.kind == "restart" and .connections > 0) | .blackout_ms]},
    longest_crash_outage_survived_s: ([.[] | select(.kind == "crash" and .connections_failed == 0) | .outage_s] | max)}' \
  "$results" >bench/results/restart.json
cat bench/results/restart.json
