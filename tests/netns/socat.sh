#!/usr/bin/env bash
# socat under the preload (libmultistack-preload.so), in the server namespace with
# multistackd on its interface:
#   - as a server without fork (it closes its listener once it accepts), with PIPE,
#     EXEC:cat and SYSTEM:cat and socket options (nodelay, keepalive, buffer sizes,
#     linger): 8 MB echoed byte-exact while the client sends; the claim stays while the
#     accepted connection runs, and goes when it ends;
#   - a Python server that closes its listener after one accept: new connections are
#     refused, as in Linux, the accepted one goes on, and its claim is released when it
#     ends, while the process lives;
#   - as a client of kernel servers in the client namespace: TCP (4 MB byte-exact, through
#     socat's select loop on stdin and the socket) and UDP.
# Usage: BIN_DIR=build socat.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "so$$"
ms_daemon

# preloaded CMD...: CMD in the server namespace under the preload.
preloaded() { in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 "$@"; }

# claimed PORT: whether multistackd holds a claim on the server's PORT.
claimed() { in_server "$MSCTL" --socket "$SOCK" claims | grep -q "tcp $SERVER_IP:$1\b"; }

# --- socat as a server, without fork ---------------------------------------------------
port=7000
for opts in "reuseaddr" "reuseaddr,nodelay,keepalive" "rcvbuf=65536,sndbuf=65536,linger=5"; do
  for peer in PIPE EXEC:cat SYSTEM:cat; do
    ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
      socat "$SOCAT_BLOCK" "TCP-LISTEN:$port,bind=$SERVER_IP,$opts" "$peer"
    for _ in $(seq 50); do claimed "$port" && break; sleep 0.1; done
    claimed "$port" || fail "socat's listener on port $port is not on UTCP"
    out=$(in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" "$port" 8000000 2>&1) || fail "socat $opts $peer: $out"
    wait "$LAST_PID" || fail "socat $opts $peer exited with $?"
    claimed "$port" && fail "the claim on port $port outlived socat's connection"
    port=$((port + 1))
  done
  ok "socat TCP-LISTEN:...,$opts with PIPE, EXEC:cat and SYSTEM:cat: 8 MB echoed byte-exact after the listener closed"
done

# --- the claim of a closed listener lives as long as its connections ---------------------
cat >"$TMP/close_listener.py" <<'EOF'
import socket, sys, time
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
conn, _ = listener.accept()
listener.close()
print("listener closed", flush=True)
while data := conn.recv(65536):
    conn.sendall(data)
conn.close()
print("connection closed", flush=True)
time.sleep(20)
EOF
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" \
  "$PY" "$TMP/close_listener.py" "$SERVER_IP" 7200 >"$TMP/close_listener.log" 2>&1
wait_for "$TMP/close_listener.log" listening || fail "the server did not start: $(cat "$TMP/close_listener.log")"
out=$(in_client "$PY" - "$SERVER_IP" <<'EOF' 2>&1
import socket, sys
c = socket.create_connection((sys.argv[1], 7200), timeout=5)
c.recv(0)
import time; time.sleep(0.5)  # the server closes its listener meanwhile
try:
    socket.create_connection((sys.argv[1], 7200), timeout=5)
    sys.exit("a new connection reached a closed listener")
except ConnectionRefusedError:
    pass
c.sendall(b"still here")
assert c.recv(100) == b"still here"
c.shutdown(socket.SHUT_WR)
assert c.recv(100) == b""
print("refused a new connection; the accepted one echoed")
EOF
) || fail "a closed listener's connection: $out $(cat "$TMP/close_listener.log")"
wait_for "$TMP/close_listener.log" "connection closed" || fail "the server did not close: $(cat "$TMP/close_listener.log")"
for _ in $(seq 30); do claimed 7200 || break; sleep 0.1; done
claimed 7200 && fail "the claim outlived the closed listener's last connection"
kill -0 "$LAST_PID" || fail "the server exited early"
ok "a closed listener: new connections refused, the accepted one kept its claim, released when it ended"

# --- socat as a client -------------------------------------------------------------------
ms_bg ip netns exec "$CLIENT_NS" socat "$SOCAT_BLOCK" "TCP-LISTEN:7100,bind=$CLIENT_IP,reuseaddr,fork" PIPE
ms_bg ip netns exec "$CLIENT_NS" socat "UDP-LISTEN:7101,bind=$CLIENT_IP,reuseaddr" PIPE
sleep 0.5
head -c 4000000 /dev/urandom >"$TMP/in.bin"
preloaded MULTISTACK_LOG=2 socat -t 5 -b 65536 - "TCP:$CLIENT_IP:7100" <"$TMP/in.bin" >"$TMP/out.bin" 2>"$TMP/client.log" ||
  fail "socat as a TCP client: $(cat "$TMP/client.log")"
grep -q "connecting to $CLIENT_IP:7100 over UTCP" "$TMP/client.log" || fail "socat's connection is not on UTCP: $(cat "$TMP/client.log")"
cmp -s "$TMP/in.bin" "$TMP/out.bin" || fail "socat as a TCP client: $(stat -c %s "$TMP/out.bin") bytes came back, or other bytes"
ok "socat as a TCP client on UTCP: 4 MB echoed byte-exact by a kernel server"
out=$(echo "hello over UDP" | preloaded MULTISTACK_LOG=2 socat -t 2 - "UDP:$CLIENT_IP:7101" 2>"$TMP/udp.log") ||
  fail "socat as a UDP client: $(cat "$TMP/udp.log")"
[[ $out == "hello over UDP" ]] || fail "socat as a UDP client got '$out': $(cat "$TMP/udp.log")"
grep -q "UDP on .* over UTCP" "$TMP/udp.log" || fail "socat's UDP socket is not on UTCP: $(cat "$TMP/udp.log")"
ok "socat as a UDP client on UTCP: its datagram came back"
