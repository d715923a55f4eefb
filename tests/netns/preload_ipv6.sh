#!/usr/bin/env bash
# AF_INET6 under libmultistack-preload.so: the hosts get 2001:2::1 and 2001:2::2 beside
# their IPv4 addresses, and multistackd serves both.
#   - curl -6 under the preload fetches 1 MB from a kernel server over UTCP, byte-exact;
#   - python3 -m http.server on :: (dual stack) serves an IPv4 and an IPv6 curl from
#     UTCP, byte-exact, with no kernel listener on its port;
#   - preload_ipv6_checks.py: sockaddr_in6 names, v4-mapped peers, a dual-stack listener,
#     IPV6_V6ONLY and IPV6_TCLASS, UDP over IPv6, EMSGSIZE (MULTISTACK_REQUIRE=1);
#   - ip_marks_checks.py: IPV6_TCLASS, IP_TOS, leased flow labels asked for at connect()
#     and sendto(), and IPV6_AUTOFLOWLABEL, on the wire (frame_marks.py at the peer);
#   - redis-server on ::1 stays with the kernel and answers.
# Usage: BIN_DIR=build preload_ipv6.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "p6$$"
ipv6_hosts
ms_daemon
www="$TMP/www"
mkdir -p "$www"
head -c $((1024 * 1024)) /dev/urandom >"$www/1m.bin"
want=$(sha256sum <"$www/1m.bin")
preloaded() { in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" "$@"; }

# --- curl -6 to a kernel server ---------------------------------------------------------
ms_bg env -C "$www" ip netns exec "$CLIENT_NS" "$PY" -m http.server --bind "$CLIENT6" 8001 >"$TMP/kernel_httpd.log" 2>&1
wait_for "$TMP/kernel_httpd.log" "Serving HTTP" || fail "the kernel http.server did not start"
got=$(preloaded MULTISTACK_LOG=2 curl -6 -sf -m 10 "http://[$CLIENT6]:8001/1m.bin" 2>"$TMP/curl.log" | sha256sum) ||
  fail "curl -6 under the preload: $(cat "$TMP/curl.log")"
[[ $got == "$want" ]] || fail "curl -6 under the preload got different bytes"
grep -q "connecting to \[$CLIENT6\]:8001 over UTCP" "$TMP/curl.log" || fail "curl -6 was not on UTCP: $(cat "$TMP/curl.log")"
ok "curl -6 under the preload: 1 MB from a kernel server byte-exact, over UTCP"

# --- python3 -m http.server on :: -----------------------------------------------------------
ms_bg env -C "$www" ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  MULTISTACK_REQUIRE=1 "$PY" -m http.server --bind :: 8000 >"$TMP/httpd.log" 2>&1
wait_for "$TMP/httpd.log" "Serving HTTP" || fail "http.server on :: did not start: $(cat "$TMP/httpd.log")"
grep -q "listening on \[::\]:8000 over UTCP" "$TMP/httpd.log" || fail "http.server's :: listener is not on UTCP: $(cat "$TMP/httpd.log")"
in_server ss -Hltn "sport = :8000" | grep -q . && fail "the kernel holds a listener on port 8000"
for url in "http://[$SERVER6]:8000/1m.bin" "http://$SERVER_IP:8000/1m.bin"; do
  got=$(in_client curl -sf -m 10 "$url" | sha256sum) || fail "curl $url from http.server on ::"
  [[ $got == "$want" ]] || fail "http.server on :: sent different bytes to $url"
done
ok "python3 -m http.server on :: (UTCP): IPv6 and IPv4 clients both served 1 MB byte-exact, no kernel listener"

# --- the socket calls ---------------------------------------------------------------------
ms_bg ip netns exec "$CLIENT_NS" "$PY" -c "
import socket, threading
def echo(c):
    while data := c.recv(65536):
        c.sendall(data)
    c.close()
def serve(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 9101))
    s.listen(16)
    while True:
        threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()
def connect_back():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(('$CLIENT6', 9103))
    s.listen(4)
    while True:
        c = s.accept()[0]
        port = int(c.recv(16))
        for addr in ('$SERVER_IP', '$SERVER6'):
            family = socket.AF_INET6 if ':' in addr else socket.AF_INET
            t = socket.socket(family, socket.SOCK_STREAM)
            t.connect((addr, port))
            threading.Thread(target=echo, args=(t,), daemon=True).start()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(('$CLIENT6', 9102))
def udp():
    while True:
        data, peer = u.recvfrom(65536)
        u.sendto(data, peer)
for target, args in ((serve, (socket.AF_INET6, '$CLIENT6')), (serve, (socket.AF_INET, '$CLIENT_IP')), (connect_back, ()), (udp, ())):
    threading.Thread(target=target, args=args, daemon=True).start()
print('peers up', flush=True)
threading.Event().wait()
" >"$TMP/peer.log" 2>&1
wait_for "$TMP/peer.log" "peers up" || fail "the kernel peers did not start: $(cat "$TMP/peer.log")"
sleep 0.3
preloaded MULTISTACK_REQUIRE=1 timeout 60 "$PY" "$ROOT/tests/netns/preload_ipv6_checks.py" "$SERVER6" "$CLIENT6" \
  "$SERVER_IP" "$CLIENT_IP" >"$TMP/checks.log" 2>&1 || fail "AF_INET6 checks: $(cat "$TMP/checks.log")"
ok "AF_INET6 on UTCP: sockaddr_in6 names, v4-mapped peers, a dual-stack listener, IPV6_V6ONLY, IPV6_TCLASS, UDP over IPv6, EMSGSIZE"

# --- what the IP headers carry ------------------------------------------------------------
ms_bg ip netns exec "$CLIENT_NS" "$PY" "$ROOT/tests/netns/frame_marks.py" "$CLIENT_IF" >"$TMP/frames.log" 2>&1
wait_for "$TMP/frames.log" "sniffing" || fail "the frame sniffer did not start: $(cat "$TMP/frames.log")"
preloaded MULTISTACK_REQUIRE=1 timeout 60 "$PY" "$ROOT/tests/netns/ip_marks_checks.py" "$CLIENT6" "$CLIENT_IP" \
  "$TMP/frames.log" >"$TMP/marks.log" 2>&1 || fail "IP header marks: $(cat "$TMP/marks.log")"
ok "IP header marks on UTCP: IPV6_TCLASS and IP_TOS, leased flow labels at connect() and sendto(), IPV6_AUTOFLOWLABEL"

# --- ::1 stays with the kernel ---------------------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  redis-server --bind ::1 --port 6390 --save "" --appendonly no >"$TMP/redis.log" 2>&1
wait_for "$TMP/redis.log" "Ready to accept" || fail "redis-server on ::1 did not start: $(cat "$TMP/redis.log")"
in_server ss -Hltn "sport = :6390" | grep -q "\[::1\]" || fail "redis-server's ::1 listener is not the kernel's"
[[ $(in_server redis-cli -h ::1 -p 6390 ping) == PONG ]] || fail "redis-server on ::1 did not answer"
ok "redis-server on ::1 under the preload stays with the kernel and answers"
