#!/usr/bin/env bash
# BBR, CUBIC and the kernel's CUBIC through one bottleneck with a deep buffer.
#
# The bed: a router between the hosts forwards 100 Mbit/s each way with a 1.5 MB tail-drop
# queue (120 ms at the rate; router_bottleneck), and multistackd delays what its ports
# receive by 20 ms, so every TCP round trip through UTCP takes 20 ms plus the queue.
# Four flows of BYTES, one after the other, each while the client pings the server
# every 10 ms (the kernel answers; a ping waits behind the flow's queue, so it measures
# the queue):
#   utcp_bbr      UTCP with BBR sends to a kernel client (the 20 ms are its ACKs');
#   utcp_cubic    UTCP with CUBIC, the same way;
#   kernel_cubic  the kernel's CUBIC on the client sends to a UTCP sink (the 20 ms are the
#                 data's, on the sink's port);
#   kernel_bbr    the kernel's own BBR (version 1) the same way, for reference.
# The kernel's algorithm is named on each socket: a host's default need not be CUBIC.
# Checks that each flow moved every byte; that BBR carries at least 85 % of the link's TCP
# payload rate at a median RTT (the path's 20 ms and the median queue) within 1.25 times
# the path's; and that the kernel's CUBIC fills the buffer: its median RTT is at least
# twice the path's. The benchmark (bench/tcp.sh bottleneck) repeats it for the 90 % target.
#
# Usage: BIN_DIR=build bottleneck.sh
#   BYTES=N             bytes per flow (40 MB)
#   BOTTLENECK_JSON=F   also write the figures to F as JSON
source "$(dirname "$0")/lib.sh"
BENCH="$BIN_DIR/bench/ms-tcp-bench"
BYTES=${BYTES:-41943040}
RATE_MBIT=100
PATH_MS=20
QUEUE_BYTES=1500000
ms_setup "bn$$" 1 router
router_bottleneck "${RATE_MBIT}mbit" "$QUEUE_BYTES"
ms_daemon --fault "delay=$PATH_MS"

# The UTCP ends, with buffers deep enough for the bottleneck's queue and its BDP.
utcp_serve() {
  local name=$1 port=$2
  shift 2
  ms_bg ip netns exec "$SERVER_NS" "$BENCH" serve --stack utcp --socket "$SOCK" --listen "$SERVER_IP:$port" \
    --buffer 8388608 "$@" >"$TMP/$name.log" 2>&1
  wait_for "$TMP/$name.log" serving || fail "$name did not start: $(cat "$TMP/$name.log")"
}
utcp_serve bbr_source 7000 --cc bbr --mode source --bytes "$BYTES"
utcp_serve cubic_source 7001 --cc cubic --mode source --bytes "$BYTES"
utcp_serve sink 7002 --mode sink

# flow NAME CLIENT-ARGS...: one flow from the client's ms-tcp-bench while pinging; appends
# its figures to $TMP/flows.jsonl and prints them.
flow() {
  local name=$1 out start end
  shift
  ms_bg ip netns exec "$CLIENT_NS" ping -D -n -i 0.01 -w 120 "$SERVER_IP" >"$TMP/ping-$name.txt" 2>&1
  local ping_pid=$LAST_PID
  start=$(date +%s.%N)
  out=$(timeout 120 ip netns exec "$CLIENT_NS" "$BENCH" "$@" --bytes "$BYTES") || fail "$name: the flow failed: $out"
  end=$(date +%s.%N)
  kill -TERM "$ping_pid" 2>/dev/null || true
  "$PY" - "$name" "$out" "$TMP/ping-$name.txt" "$start" "$end" "$RATE_MBIT" "$PATH_MS" <<'PY' >>"$TMP/flows.jsonl" ||
import json, statistics, sys
name, run, pings, start, end = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
rate_mbit, path_ms = float(sys.argv[6]), float(sys.argv[7])
# ping -D: "[unix time] ... time=MS ms"; only the replies to pings sent while the flow ran.
rtts = [float(line.split("time=")[1].split()[0]) for line in open(pings)
        if "time=" in line and start <= float(line[1:line.index("]")]) <= end]
if len(rtts) < 10:
    sys.exit(f"{name}: too few ping replies to measure the queue ({len(rtts)})")
payload_rate = rate_mbit * 1e6 / 8 * 1448 / 1514  # TCP payload of each full frame
queue = statistics.median(rtts)
print(json.dumps({"flow": name, "bytes": run["bytes"], "seconds": run["seconds"],
                  "share_of_rate": round(run["bytes"] / run["seconds"] / payload_rate, 3),
                  "queue_p50_ms": round(queue, 2), "rtt_p50_ms": round(path_ms + queue, 2),
                  "rtt_inflation_p50": round((path_ms + queue) / path_ms, 3), "pings": len(rtts)}))
PY
    fail "$name: no figures: $(tail -3 "$TMP/ping-$name.txt")"
  echo "$name: $(tail -1 "$TMP/flows.jsonl")"
}

flow utcp_bbr receive --connect "$SERVER_IP:7000"
flow utcp_cubic receive --connect "$SERVER_IP:7001"
flow kernel_cubic send --connect "$SERVER_IP:7002" --cc cubic
flow kernel_bbr send --connect "$SERVER_IP:7002" --cc bbr

"$PY" - "$TMP/flows.jsonl" "${BOTTLENECK_JSON:-}" "$RATE_MBIT" "$PATH_MS" "$QUEUE_BYTES" <<'PY' ||
import json, sys
flows = {f.pop("flow"): f for f in map(json.loads, open(sys.argv[1]))}
if sys.argv[2]:
    json.dump({"rate_mbit": float(sys.argv[3]), "path_ms": float(sys.argv[4]), "queue_bytes": int(sys.argv[5]),
               "flows": flows}, open(sys.argv[2], "w"), indent=1)
bbr, kernel = flows["utcp_bbr"], flows["kernel_cubic"]
sys.exit(0 if bbr["share_of_rate"] >= 0.85 and bbr["rtt_inflation_p50"] <= 1.25
         and kernel["rtt_inflation_p50"] >= 2 else 1)
PY
  fail "BBR did not fill the pipe without filling the buffer, or the kernel's CUBIC did not queue (above)"
ok "through ${RATE_MBIT} Mbit/s, $PATH_MS ms and a $QUEUE_BYTES-byte queue, BBR filled the pipe but not the buffer"
