#!/usr/bin/env bash
# Connections that move between processes under the preload (docs/DESIGN.md §7,
# "Connections that move"), in the server namespace with multistackd on its interface:
#   - Python's socketserver.ForkingTCPServer: each accepted connection moves to the child
#     that serves it once the parent closes its copy; several connections at once, 8 MB
#     echoed byte-exact on each;
#   - socat TCP-LISTEN:...,fork with PIPE and EXEC:cat: byte-exact;
#   - multistackd counts each hand-off taken, none dropped.
# Usage: BIN_DIR=build connection_handoff.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "ho$$"
ms_daemon

cat >"$TMP/forking_server.py" <<'PYEOF'
import socketserver, sys

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        while data := self.request.recv(1 << 16):
            self.request.sendall(data)

socketserver.ForkingTCPServer.allow_reuse_address = True
with socketserver.ForkingTCPServer((sys.argv[1], int(sys.argv[2])), Echo) as server:
    print("serving", flush=True)
    server.serve_forever()
PYEOF

# claimed PORT: whether multistackd holds a claim on the server's PORT.
claimed() { in_server "$MSCTL" --socket "$SOCK" claims | grep -q "tcp $SERVER_IP:$1\b"; }
# wait_claimed PORT WHAT
wait_claimed() {
  for _ in $(seq 50); do claimed "$1" && return 0; sleep 0.1; done
  fail "$2 on port $1 is not on UTCP"
}

# --- socketserver.ForkingTCPServer ------------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
  "$PY" "$TMP/forking_server.py" "$SERVER_IP" 7100
wait_claimed 7100 "ForkingTCPServer's listener"
out=$(in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" 7100 8000000 4 2>&1) || fail "ForkingTCPServer: $out"
ok "ForkingTCPServer under the preload: $out, each served by a forked child"
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true

# --- socat TCP-LISTEN:...,fork ------------------------------------------------------------
port=7200
for peer in PIPE EXEC:cat; do
  ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
    socat "TCP-LISTEN:$port,bind=$SERVER_IP,reuseaddr,fork" "$peer"
  wait_claimed "$port" "socat's listener"
  out=$(in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" "$port" 8000000 3 2>&1) || fail "socat fork $peer: $out"
  ok "socat TCP-LISTEN:...,fork with $peer: $out"
  kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
  port=$((port + 1))
done

in_server "$MSCTL" --socket "$SOCK" status >"$TMP/status.txt"
taken=$(awk '/connection hand-offs/ {for (i = 1; i <= NF; i++) if ($i ~ /^taken/) print $(i - 1)}' "$TMP/status.txt")
dropped=$(awk '/connection hand-offs/ {for (i = 1; i <= NF; i++) if ($i ~ /^dropped/) print $(i - 1)}' "$TMP/status.txt")
[[ ${taken:-0} -ge 10 ]] || fail "multistackd counted ${taken:-no} hand-offs taken, want at least 10: $(cat "$TMP/status.txt")"
[[ ${dropped:-1} -eq 0 ]] || fail "multistackd dropped ${dropped:-?} hand-offs"
ok "multistackd: $taken connections handed between processes, none dropped"
