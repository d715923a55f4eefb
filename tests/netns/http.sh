#!/usr/bin/env bash
# ms-httpd over UTCP (through multistackd, port 80) and over kernel sockets (port 8080),
# same address: HTTP conformance on both (tests/netns/http_check.py: files byte-exact,
# HEAD, 400/404/405/413/414/431, a request byte by byte, pipelining, slowloris cut off);
# then over UTCP 10k requests with Connection: close and 10k with keep-alive from curl
# and from wrk with zero errors, and 60 s of wrk with Connection: close at full speed
# with zero socket errors (the client's ports wrap: TIME_WAIT reuse); and a reload on
# SIGHUP. Usage: BIN_DIR=build http.sh [WRK_SECONDS]
source "$(dirname "$0")/lib.sh"
HTTPD="$BIN_DIR/tools/ms-httpd"
wrk_seconds=${1:-60}
ms_setup "ht$$"
ms_daemon
www="$TMP/www"
mkdir -p "$www"
echo "<h1>MultiStack</h1>" >"$www/index.html"
for kb in 1 2 4 8 16 32 1024; do head -c $((kb * 1024)) /dev/urandom >"$www/${kb}k.bin"; done

ms_bg ip netns exec "$SERVER_NS" "$HTTPD" --transport utcp --socket "$SOCK" --listen "$SERVER_IP:80" \
  --root "$www" --header-timeout 1 >"$TMP/utcp.log" 2>&1
UTCP_PID=$LAST_PID
ms_bg ip netns exec "$SERVER_NS" "$HTTPD" --transport kernel --listen "$SERVER_IP:8080" \
  --root "$www" --header-timeout 1 >"$TMP/kernel.log" 2>&1
wait_for "$TMP/utcp.log" "serving" || fail "ms-httpd over UTCP did not start: $(cat "$TMP/utcp.log")"
wait_for "$TMP/kernel.log" "serving" || fail "ms-httpd over kernel sockets did not start: $(cat "$TMP/kernel.log")"

# A second server on a taken port, and one without the switch, fail clearly.
if out=$(ip netns exec "$SERVER_NS" "$HTTPD" --transport kernel --listen "$SERVER_IP:80" --root "$www" 2>&1); then
  fail "a kernel server could take UTCP's port 80"
fi
grep -q "in use" <<<"$out" || fail "no clear error for a taken port: $out"
out=$(ip netns exec "$SERVER_NS" "$HTTPD" --transport utcp --socket "$TMP/none.sock" --listen "$SERVER_IP:81" --root "$www" 2>&1) &&
  fail "ms-httpd started without a switch"
grep -q "not running" <<<"$out" || fail "no clear error without the switch: $out"
ok "clear errors when the port is taken and when the switch is not running"

for port in 80 8080; do
  in_client "$PY" "$ROOT/tests/netns/http_check.py" "$SERVER_IP" "$port" "$www" | sed "s/^/  [$port] /" ||
    fail "HTTP conformance on port $port"
done
ok "HTTP conformance passes over UTCP (80) and over kernel sockets (8080)"

# curl: 10k requests, keep-alive (one connection) and Connection: close.
seq 10000 | sed "s|.*|url = \"http://$SERVER_IP/1k.bin\"\noutput = \"/dev/null\"|" >"$TMP/curl.cfg"
for mode in keep-alive close; do
  extra=()
  [[ $mode == close ]] && extra=(-H "Connection: close")
  codes=$(in_client curl -s -K "$TMP/curl.cfg" "${extra[@]}" -w '%{http_code}\n' | sort | uniq -c)
  [[ $(awk '{print $1, $2}' <<<"$codes") == "10000 200" ]] || fail "curl $mode: $codes"
  ok "curl: 10000 requests over UTCP with $mode, all 200"
done

# wrk_check ARGS...: runs wrk, fails on any error; prints requests/s.
wrk_check() {
  local out
  out=$(in_client wrk "$@" "http://$SERVER_IP/1k.bin")
  grep -q "Socket errors" <<<"$out" && fail "wrk $*: $out"
  grep -q "Non-2xx" <<<"$out" && fail "wrk $*: $out"
  local requests
  requests=$(grep -o '[0-9]* requests in' <<<"$out" | cut -d' ' -f1)
  echo "$requests $(grep Requests/sec <<<"$out" | awk '{print $2}')"
}
read -r n rps < <(wrk_check -t1 -c10 -d2s)
((n >= 10000)) || fail "wrk keep-alive made only $n requests"
ok "wrk keep-alive: $n requests over UTCP, no errors ($rps requests/s)"
read -r n rps < <(wrk_check -t1 -c10 -d2s -H "Connection: close")
((n >= 10000)) || fail "wrk Connection: close made only $n requests"
ok "wrk Connection: close: $n requests over UTCP, no errors ($rps requests/s)"
read -r n rps < <(wrk_check -t1 -c50 -d"${wrk_seconds}s" -H "Connection: close")
ok "wrk Connection: close for ${wrk_seconds} s: $n connections, zero socket errors ($rps requests/s)"

echo "<h1>reloaded</h1>" >"$www/index.html"
kill -HUP "$UTCP_PID"
sleep 0.5
body=$(in_client curl -s "http://$SERVER_IP/")
[[ $body == "<h1>reloaded</h1>" ]] || fail "SIGHUP did not reload: $body"
ok "SIGHUP reloads the files"

# File bodies leave by reference to the cache in the port's data area,
# also after the reload put the files in a new block there.
want=$(sha256sum <"$www/1024k.bin" | cut -d' ' -f1)
for i in 1 2 3; do
  got=$(in_client curl -s "http://$SERVER_IP/1024k.bin" | sha256sum | cut -d' ' -f1)
  [[ $got == "$want" ]] || fail "1024k.bin after the reload: sha256 $got, want $want"
done
ok "1 MB file byte-exact after the reload"

kill -TERM "$UTCP_PID"
wait "$UTCP_PID" || fail "ms-httpd did not exit cleanly"
summary=$(tail -1 "$TMP/utcp.log")
"$PY" - "$summary" <<'EOF' || fail "file bodies did not leave by reference: $summary"
import json, sys
s = json.loads(sys.argv[1])
assert s["files_in_port_memory"] is True, "the file cache is not in the port's data area"
assert s["body_bytes_by_reference"] >= 3 << 20, s  # three 1 MB bodies at least, never copied
assert s["super_segments"] >= 3 * 1024 // 64, s
assert s["super_segments_by_reference"] >= 0.9 * s["super_segments"], s
EOF
ok "ms-httpd over UTCP: file cache in the port's data area, bodies sent by reference: $summary"
echo "PASS"
