#!/usr/bin/env bash
# Unmodified programs on UTCP through libmultistack-preload.so (LD_PRELOAD), in the
# server namespace with multistackd on its interface:
#   - python3 -m http.server serves a 1 MB file byte-exact to curl in the client
#     namespace, with its listener on UTCP (the kernel holds no listener on the port);
#   - curl and Python's urllib fetch from a kernel server in the client namespace over UTCP;
#   - nginx in its default process model (master and two workers), redis-server with
#     redis-benchmark, memcached with 4 threads, iperf3 both ways and as a client;
#   - UDP: a Python echo server and a Python client on UTCP;
#   - fork: a child that leaves inherited UTCP sockets alone is unaffected;
#   - the POSIX semantics checks of preload_semantics.py (errno values, partial writes,
#     EAGAIN, half close, a reset, epoll edge- and level-triggered, EPOLLONESHOT,
#     EPOLLRDHUP, EPOLLEXCLUSIVE, a socket in two epoll sets and dup of a watched one), with
#     MULTISTACK_REQUIRE=1 so that no socket falls back silently;
#   - loopback stays with the kernel; with no daemon the same commands run on the kernel,
#     after one log line, or fail with ENETDOWN under MULTISTACK_REQUIRE=1.
# Usage: BIN_DIR=build preload.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "pl$$"
ms_daemon --group nogroup  # uid 65534 attaches in the last check
www="$TMP/www"
mkdir -p "$www"
head -c $((1024 * 1024)) /dev/urandom >"$www/1m.bin"
want=$(sha256sum <"$www/1m.bin")

# preloaded ENV... CMD: runs CMD in the server namespace under the preload.
preloaded() { in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" "$@"; }

# --- a server: python3 -m http.server -------------------------------------------------
ms_bg env -C "$www" ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  "$PY" -m http.server --bind "$SERVER_IP" 8000 >"$TMP/httpd.log" 2>&1
wait_for "$TMP/httpd.log" "Serving HTTP" || fail "python's http.server did not start: $(cat "$TMP/httpd.log")"
grep -q "listening on $SERVER_IP:8000 over UTCP" "$TMP/httpd.log" || fail "http.server's listener is not on UTCP: $(cat "$TMP/httpd.log")"
in_server ss -Hltn "sport = :8000" | grep -q . && fail "the kernel holds a listener on port 8000"
for i in 1 2 3; do
  got=$(in_client curl -sf -m 10 "http://$SERVER_IP:8000/1m.bin" | sha256sum) || fail "curl from http.server on UTCP (try $i)"
  [[ $got == "$want" ]] || fail "http.server on UTCP sent different bytes"
done
ok "python3 -m http.server on UTCP: 3 fetches of 1 MB byte-exact, no kernel listener"

# --- clients: curl and urllib to a kernel server --------------------------------------
ms_bg env -C "$www" ip netns exec "$CLIENT_NS" "$PY" -m http.server --bind "$CLIENT_IP" 8001 >"$TMP/kernel_httpd.log" 2>&1
wait_for "$TMP/kernel_httpd.log" "Serving HTTP" || fail "the kernel http.server did not start"
got=$(preloaded MULTISTACK_LOG=2 curl -sf -m 10 "http://$CLIENT_IP:8001/1m.bin" 2>"$TMP/curl.log" | sha256sum) ||
  fail "curl under the preload: $(cat "$TMP/curl.log")"
[[ $got == "$want" ]] || fail "curl under the preload got different bytes"
grep -q "connecting to $CLIENT_IP:8001 over UTCP" "$TMP/curl.log" || fail "curl's connection was not on UTCP: $(cat "$TMP/curl.log")"
ok "curl under the preload: 1 MB from a kernel server byte-exact, over UTCP"
got=$(preloaded MULTISTACK_LOG=2 "$PY" -c "
import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen('http://$CLIENT_IP:8001/1m.bin', timeout=10).read())" 2>"$TMP/urllib.log" | sha256sum) ||
  fail "urllib under the preload: $(cat "$TMP/urllib.log")"
[[ $got == "$want" ]] || fail "urllib under the preload got different bytes"
grep -q "over UTCP" "$TMP/urllib.log" || fail "urllib's connection was not on UTCP: $(cat "$TMP/urllib.log")"
ok "Python's urllib under the preload: 1 MB byte-exact, over UTCP"

# --- POSIX semantics ------------------------------------------------------------------
ms_bg ip netns exec "$CLIENT_NS" "$PY" "$ROOT/tests/netns/preload_peer.py" "$CLIENT_IP" >"$TMP/peer.log" 2>&1
wait_for "$TMP/peer.log" "peers ready" || fail "the kernel peers did not start"
preloaded MULTISTACK_REQUIRE=1 timeout 60 "$PY" "$ROOT/tests/netns/preload_semantics.py" "$SERVER_IP" "$CLIENT_IP" |
  sed 's/^/  /' || fail "POSIX semantics over UTCP"
ok "POSIX semantics over UTCP: errno values, partial writes, half close, reset, epoll ET and LT, EPOLLONESHOT, EPOLLRDHUP, EPOLLEXCLUSIVE, two epoll sets, dup of a watched socket"

# --- nginx, its default process model (a master opens the listener, workers serve it) --
nginx_conf "$www"
echo "<h1>MultiStack</h1>" >"$www/index.html"
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  nginx -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1
wait_for "$TMP/nginx.log" "listening on $SERVER_IP:8080 over UTCP" || fail "nginx's listener is not on UTCP: $(cat "$TMP/nginx.log")"
for i in 1 2 3; do
  got=$(in_client curl -sf -m 10 "http://$SERVER_IP:8080/1m.bin" | sha256sum) || fail "curl from nginx on UTCP: $(cat "$TMP/nginx_error.log")"
  [[ $got == "$want" ]] || fail "nginx on UTCP sent different bytes"
done
for mode in keep-alive close; do
  extra=()
  [[ $mode == close ]] && extra=(-H "Connection: close")
  out=$(in_client wrk -t1 -c8 -d3 "${extra[@]}" "http://$SERVER_IP:8080/index.html")
  grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against nginx on UTCP ($mode): $out"
  requests=$(grep -o '[0-9]* requests in' <<<"$out" | cut -d' ' -f1)
  ((requests > 1000)) || fail "wrk against nginx on UTCP ($mode): only $requests requests"
  ok "nginx on UTCP: $requests requests with $mode from wrk, no errors"
done
in_server ss -Hltn "sport = :8080" | grep -q . && fail "the kernel holds a listener on port 8080"
ok "nginx (master and 2 workers) on UTCP: 3 fetches of 1 MB byte-exact, no kernel listener"

# --- redis-server and redis-benchmark ------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  redis-server --bind "$SERVER_IP" --port 6379 --save "" --appendonly no --protected-mode no >"$TMP/redis.log" 2>&1
wait_for "$TMP/redis.log" "Ready to accept connections" || fail "redis-server did not start: $(cat "$TMP/redis.log")"
grep -q "listening on $SERVER_IP:6379 over UTCP" "$TMP/redis.log" || fail "redis's listener is not on UTCP"
out=$(in_client timeout 120 redis-benchmark -h "$SERVER_IP" -n 5000 -c 20 -q --csv 2>&1) || fail "redis-benchmark: $out"
tests=$(grep -c '^"' <<<"$out")
((tests >= 15)) || fail "redis-benchmark ran $tests tests: $out"
grep '^"' <<<"$out" | grep -v '"test"' | awk -F'"' '$4 + 0 <= 0 {bad = 1} END {exit bad}' || fail "a redis-benchmark test did nothing: $out"
head -c 300000 /dev/urandom | base64 -w0 >"$TMP/big"
got=$(in_client redis-cli -h "$SERVER_IP" -x SET big <"$TMP/big" 2>&1)
[[ $got == OK ]] || fail "redis SET of 400 KB: $got"
in_client redis-cli -h "$SERVER_IP" --raw GET big | head -c -1 | cmp -s - "$TMP/big" || fail "redis GET after a 400 KB SET differs"
ok "redis-server on UTCP: every redis-benchmark test ran ($((tests - 1)) tests), a 400 KB value intact"

# --- memcached, 4 threads ------------------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  memcached -u root -l "$SERVER_IP" -p 11211 -t 4 -U 0 -m 512 >"$TMP/memcached.log" 2>&1
wait_for "$TMP/memcached.log" "listening on $SERVER_IP:11211 over UTCP" || fail "memcached is not on UTCP: $(cat "$TMP/memcached.log")"
py_client "
import concurrent.futures, os, socket
def worker(n):
    s = socket.create_connection(('$SERVER_IP', 11211), timeout=10)
    f = s.makefile('rwb')
    values = {f'k{n}-{i}': os.urandom(1 + (i * 7919) % 60000) for i in range(200)}
    for k, v in values.items():
        f.write(b'set %s 0 0 %d\r\n%s\r\n' % (k.encode(), len(v), v)); f.flush()
        assert f.readline() == b'STORED\r\n', k
    for k, v in values.items():
        f.write(b'get %s\r\n' % k.encode()); f.flush()
        head = f.readline().split()
        assert head[:2] == [b'VALUE', k.encode()] and int(head[3]) == len(v), head
        assert f.read(len(v) + 2)[:-2] == v, k
        assert f.readline() == b'END\r\n'
    return len(values)
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    assert sum(pool.map(worker, range(8))) == 1600
" || fail "memcached set/get over UTCP"
ok "memcached (4 threads) on UTCP: 1600 values over 8 connections set and read back byte-exact"

# --- iperf3, both directions, and as a client ------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  iperf3 -s -B "$SERVER_IP" -p 5201 >"$TMP/iperf3.log" 2>&1
wait_for "$TMP/iperf3.log" "listening on $SERVER_IP:5201 over UTCP" || fail "iperf3 is not on UTCP: $(cat "$TMP/iperf3.log")"
for dir in "" -R; do
  in_client timeout 60 iperf3 -c "$SERVER_IP" -p 5201 -n 200M $dir -J >"$TMP/iperf3.json" || fail "iperf3 $dir: $(cat "$TMP/iperf3.json")"
  sent=$(jq '.end.sum_sent.bytes' "$TMP/iperf3.json")
  received=$(jq '.end.sum_received.bytes' "$TMP/iperf3.json")
  # iperf3's receiver stops counting when the sender reports the end, so its count may
  # fall short by what is in flight then (with kernel sockets on both ends too).
  ((sent >= 200 * 1024 * 1024 && received * 100 >= sent * 98)) || fail "iperf3 $dir: sent $sent, received $received"
  ok "iperf3 ${dir:-(client sends)} with the server on UTCP: $sent bytes sent, $received counted by the receiver"
done
ms_bg ip netns exec "$CLIENT_NS" iperf3 -s -B "$CLIENT_IP" -p 5202 >"$TMP/iperf3k.log" 2>&1
for _ in $(seq 50); do in_client ss -Hltn "sport = :5202" | grep -q . && break; sleep 0.1; done
in_client ss -Hltn "sport = :5202" | grep -q . || fail "the kernel iperf3 server did not start"
preloaded MULTISTACK_LOG=2 timeout 60 iperf3 -c "$CLIENT_IP" -p 5202 -n 100M -J >"$TMP/iperf3c.json" 2>"$TMP/iperf3c.log" ||
  fail "iperf3 client under the preload: $(cat "$TMP/iperf3c.log")"
grep -q "over UTCP" "$TMP/iperf3c.log" || fail "iperf3's client was not on UTCP: $(cat "$TMP/iperf3c.log")"
sent=$(jq '.end.sum_sent.bytes' "$TMP/iperf3c.json")
received=$(jq '.end.sum_received.bytes' "$TMP/iperf3c.json")
((sent >= 100 * 1024 * 1024 && received * 100 >= sent * 98)) || fail "iperf3 client under the preload: sent $sent, received $received"
ok "iperf3 as a client on UTCP to a kernel server: $sent bytes"

# --- UDP: a server and a client on UTCP -------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 "$PY" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$SERVER_IP', 9999))
print('echoing', flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)" >"$TMP/udp_echo.log" 2>&1
wait_for "$TMP/udp_echo.log" "echoing" || fail "the UDP echo did not start: $(cat "$TMP/udp_echo.log")"
grep -q "UDP on $SERVER_IP:9999 over UTCP" "$TMP/udp_echo.log" || fail "the UDP echo is not on UTCP: $(cat "$TMP/udp_echo.log")"
in_server ss -Hlun "sport = :9999" | grep -q . || fail "the kernel no longer reserves UDP port 9999 for the claim"
py_client "
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
for size in (1, 100, 1000, 1472):
    for _ in range(25):
        data = os.urandom(size)
        s.sendto(data, ('$SERVER_IP', 9999))
        got, peer = s.recvfrom(65536)
        assert got == data and peer == ('$SERVER_IP', 9999), (size, len(got), peer)
" || fail "UDP echo over UTCP"
ok "a UDP server on UTCP: 100 datagrams of 1 to 1472 bytes echoed byte-exact"

kernel_udp_echo 9998 "$TMP/udp_kernel_echo.log"
preloaded MULTISTACK_LOG=2 MULTISTACK_REQUIRE=1 "$PY" -c "
import errno, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b'hello', ('$CLIENT_IP', 9998))
assert s.getsockname()[0] == '$SERVER_IP', s.getsockname()
assert s.recvfrom(100) == (b'hello', ('$CLIENT_IP', 9998))
s.sendto(b'0123456789', ('$CLIENT_IP', 9998))
assert s.recv(4) == b'0123', 'a short buffer takes the front of the datagram'
s.connect(('$CLIENT_IP', 9998))
assert s.getpeername() == ('$CLIENT_IP', 9998)
s.send(b'connected')
assert s.recv(100) == b'connected'
try:
    s.send(bytes(2000)); raise SystemExit('a 2000-byte datagram was sent')
except OSError as e:
    assert e.errno == errno.EMSGSIZE, e
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_DGRAM
print('udp client ok')" 2>"$TMP/udp_client.log" | grep -q "udp client ok" || fail "a UDP client on UTCP: $(cat "$TMP/udp_client.log")"
grep -q "UDP on $SERVER_IP:[0-9]* over UTCP" "$TMP/udp_client.log" || fail "the UDP client was not on UTCP: $(cat "$TMP/udp_client.log")"
ok "a UDP client on UTCP: sendto on an unbound socket, recvfrom's source, truncation, connect, EMSGSIZE"

# --- fork: a child that leaves inherited UTCP sockets alone is unaffected; one that uses
# an inherited connection while the parent keeps it gets EOPNOTSUPP (a connection lives in
# one process's stack at a time: connection_handoff.sh moves it once the parent lets go);
# the parent's connection keeps working ------------------------------------------------
out=$(preloaded "$PY" -c "
import os, socket, subprocess
s = socket.create_connection(('$CLIENT_IP', 8001))
print(subprocess.run(['echo', 'child ran'], capture_output=True, text=True).stdout.strip())
pid = os.fork()
if pid == 0:
    try:
        s.send(b'GET / HTTP/1.0\r\n\r\n'); os._exit(1)
    except OSError as e:
        os._exit(0 if e.errno == 95 else 2)
_, status = os.waitpid(pid, 0)
print('child', os.waitstatus_to_exitcode(status))
s.sendall(b'GET /index.html HTTP/1.0\r\n\r\n')
print(s.recv(100).split(b' ')[1].decode())" 2>"$TMP/fork.log") || fail "fork under the preload: $out $(cat "$TMP/fork.log")"
[[ $out == $'child ran\nchild 0\n200' ]] || fail "fork under the preload: $out"
grep -q "that another process had is still that process's" "$TMP/fork.log" || fail "no log line for an inherited connection"
ok "fork: a subprocess runs, a connection the parent keeps gives EOPNOTSUPP in the child, the parent's keeps working"

# --- what stays with the kernel -------------------------------------------------------
out=$(preloaded MULTISTACK_LOG=2 "$PY" -c "
import socket, threading
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.sendall(b'ping'); print(a.recv(4).decode())" 2>"$TMP/loopback.log") || fail "loopback under the preload: $out"
[[ $out == ping ]] || fail "loopback under the preload: $out"
grep -q "over UTCP\|UTCP on" "$TMP/loopback.log" && fail "loopback sockets went near UTCP: $(cat "$TMP/loopback.log")"
ok "loopback sockets stay with the kernel under the preload"

got=$(in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$TMP/none.sock" curl -sf -m 10 "http://$CLIENT_IP:8001/1m.bin" \
  2>"$TMP/nodaemon.log" | sha256sum) || fail "curl without a daemon: $(cat "$TMP/nodaemon.log")"
[[ $got == "$want" ]] || fail "curl without a daemon got different bytes"
[[ $(grep -c "stay with the kernel" "$TMP/nodaemon.log") == 1 ]] || fail "no single log line without a daemon: $(cat "$TMP/nodaemon.log")"
ok "with no daemon the preloaded curl runs on the kernel after one log line"
ms_bg env -C "$www" ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$TMP/none.sock" \
  "$PY" -m http.server --bind "$SERVER_IP" 8005 >"$TMP/nodaemon_httpd.log" 2>&1
wait_for "$TMP/nodaemon_httpd.log" "Serving HTTP" || fail "http.server without a daemon: $(cat "$TMP/nodaemon_httpd.log")"
got=$(in_client curl -sf -m 10 "http://$SERVER_IP:8005/1m.bin" | sha256sum) || fail "curl from http.server without a daemon"
[[ $got == "$want" ]] || fail "http.server without a daemon sent different bytes"
in_server ss -Hltn "sport = :8005" | grep -q . || fail "without a daemon, http.server's listener is not the kernel's"
ok "with no daemon the preloaded python3 -m http.server serves from the kernel, byte-exact"

out=$(in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$TMP/none.sock" MULTISTACK_REQUIRE=1 "$PY" -c "
import socket
s = socket.socket(); s.bind(('$SERVER_IP', 8003))
try:
    s.listen(1); print('listening')
except OSError as e:
    print('error', e.errno)" 2>&1)
grep -q "error 100" <<<"$out" || fail "MULTISTACK_REQUIRE=1 without a daemon did not fail with ENETDOWN: $out"
ok "with MULTISTACK_REQUIRE=1 and no daemon, listen fails with ENETDOWN"

# An exception inside the library reaches the program as an errno and one log line, never
# as an abort through its frames: uid 65534 may have one process here (RLIMIT_NPROC), so
# the stack's thread cannot start when the listener moves to UTCP.
out=$(in_server setpriv --reuid 65534 --regid 65534 --clear-groups prlimit --nproc=1 \
  env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" "$PY" -c "
import errno, socket
s = socket.socket(); s.bind(('$SERVER_IP', 8006))
try:
    s.listen(1); print('listening')
except OSError as e:
    print('error', errno.errorcode.get(e.errno, e.errno))" 2>&1) || fail "a preloaded program whose stack cannot start died: $out"
grep -q "error EAGAIN" <<<"$out" || fail "listen without a thread for the stack did not fail with EAGAIN: $out"
grep -q "multistack: listen: " <<<"$out" || fail "no log line named the call that failed: $out"
ok "an exception inside the library (no thread for the stack) came back from listen as EAGAIN, with one log line"
