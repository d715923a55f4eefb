#!/usr/bin/env bash
# Unmodified programs on UTCP through libmultistack-preload.so (LD_PRELOAD), in the
# server namespace with multistackd on its interface:
#   - python3 -m http.server serves a 1 MB file byte-exact to curl in the client
#     namespace, with its listener on UTCP (the kernel holds no listener on the port);
#   - curl and Python's urllib fetch from a kernel server in the client namespace over UTCP;
#   - the POSIX semantics checks of preload_semantics.py (errno values, partial writes,
#     EAGAIN, half close, a reset, epoll edge- and level-triggered), with
#     MULTISTACK_REQUIRE=1 so that no socket falls back silently;
#   - loopback stays with the kernel; with no daemon the same commands run on the kernel,
#     after one log line, or fail with ENETDOWN under MULTISTACK_REQUIRE=1.
# Usage: BIN_DIR=build preload.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "pl$$"
ms_daemon
www="$TMP/www"
mkdir -p "$www"
head -c $((1024 * 1024)) /dev/urandom >"$www/1m.bin"
want=$(sha256sum <"$www/1m.bin")

# preloaded ENV... CMD: runs CMD in the server namespace under the preload.
preloaded() { in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" "$@"; }

# --- a server: python3 -m http.server -------------------------------------------------
(cd "$www" && ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  "$PY" -m http.server --bind "$SERVER_IP" 8000 >"$TMP/httpd.log" 2>&1)
wait_for "$TMP/httpd.log" "Serving HTTP" || fail "python's http.server did not start: $(cat "$TMP/httpd.log")"
grep -q "listening on $SERVER_IP:8000 over UTCP" "$TMP/httpd.log" || fail "http.server's listener is not on UTCP: $(cat "$TMP/httpd.log")"
in_server ss -Hltn "sport = :8000" | grep -q . && fail "the kernel holds a listener on port 8000"
for i in 1 2 3; do
  got=$(in_client curl -sf -m 10 "http://$SERVER_IP:8000/1m.bin" | sha256sum) || fail "curl from http.server on UTCP (try $i)"
  [[ $got == "$want" ]] || fail "http.server on UTCP sent different bytes"
done
ok "python3 -m http.server on UTCP: 3 fetches of 1 MB byte-exact, no kernel listener"

# --- clients: curl and urllib to a kernel server --------------------------------------
(cd "$www" && ms_bg ip netns exec "$CLIENT_NS" "$PY" -m http.server --bind "$CLIENT_IP" 8001 >"$TMP/kernel_httpd.log" 2>&1)
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
ok "POSIX semantics over UTCP: errno values, partial writes, half close, reset, epoll ET and LT"

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

out=$(in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$TMP/none.sock" MULTISTACK_REQUIRE=1 "$PY" -c "
import socket
s = socket.socket(); s.bind(('$SERVER_IP', 8003))
try:
    s.listen(1); print('listening')
except OSError as e:
    print('error', e.errno)" 2>&1)
grep -q "error 100" <<<"$out" || fail "MULTISTACK_REQUIRE=1 without a daemon did not fail with ENETDOWN: $out"
ok "with MULTISTACK_REQUIRE=1 and no daemon, listen fails with ENETDOWN"
