#!/usr/bin/env bash
# Connections that move between processes under the preload (docs/DESIGN.md §7,
# "Connections that move"), in the server namespace with multistackd on its interface:
#   - Python's socketserver.ForkingTCPServer: each accepted connection moves to the child
#     that serves it once the parent closes its copy; several connections at once, 8 MB
#     echoed byte-exact on each;
#   - socat TCP-LISTEN:...,fork with PIPE and EXEC:cat: byte-exact, and EXEC:cat,nofork
#     (inetd style: cat gets the connection as its stdin and stdout, through exec);
#   - a server that accepts, answers, then re-execs itself with the connection on a known
#     descriptor: the new image goes on with the same connection, byte-exact;
#   - a server that passes each accepted connection over SCM_RIGHTS to a helper child
#     forked before the accept (the same user, and one that dropped to nobody), which
#     goes on with it, byte-exact;
#   - multistackd counts each hand-off taken up, none dropped (a connection every holder
#     closed untaken goes back to its sender, which closes it: "taken back");
#   - a connection moved to a ForkingTCPServer child outlives a crash of the daemon: the
#     child kept a copy of the claim's proof and proves it again at the next daemon.
# Usage: BIN_DIR=build connection_handoff.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "ho$$"
ms_daemon --group nogroup  # a helper that drops to nobody takes a connection up

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
    socat "$SOCAT_BLOCK" "TCP-LISTEN:$port,bind=$SERVER_IP,reuseaddr,fork" "$peer"
  wait_claimed "$port" "socat's listener"
  out=$(in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" "$port" 8000000 3 2>&1) || fail "socat fork $peer: $out"
  ok "socat TCP-LISTEN:...,fork with $peer: $out"
  kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true
  port=$((port + 1))
done

# --- inetd style: the connection as a program's stdin and stdout, through exec ---------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
  socat "TCP-LISTEN:$port,bind=$SERVER_IP,reuseaddr,fork" EXEC:cat,nofork
wait_claimed "$port" "socat's listener"
out=$(in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" "$port" 8000000 2 2>&1) || fail "socat fork EXEC:cat,nofork: $out"
ok "socat TCP-LISTEN:...,fork with EXEC:cat,nofork (cat on the connection through exec): $out"
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null || true

# --- a server that re-execs itself with the accepted connection -------------------------------
cat >"$TMP/reexec_connection.py" <<'PYEOF'
import os, socket, sys
if len(sys.argv) > 3:  # the new image: the connection on a known number
    c = socket.socket(fileno=int(sys.argv[3]))
    c.sendall(b"new image %d\n" % os.getpid())
    while data := c.recv(1 << 16):
        c.sendall(data)
    sys.exit(0)
listener = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
c, _ = listener.accept()
c.sendall(b"old image %d\n" % os.getpid())
os.set_inheritable(c.fileno(), True)
os.execv(sys.executable, [sys.executable, __file__, sys.argv[1], sys.argv[2], str(c.fileno())])
PYEOF
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  "$PY" "$TMP/reexec_connection.py" "$SERVER_IP" 7300 >"$TMP/reexec.log" 2>&1
wait_for "$TMP/reexec.log" "^listening" || fail "the re-exec server did not start: $(cat "$TMP/reexec.log")"
out=$(in_client "$PY" "$ROOT/tests/netns/greeted_echo.py" "$SERVER_IP" 7300 'old image [0-9]+' 'new image [0-9]+' 2>&1) \
  || fail "re-exec with a connection: $out $(cat "$TMP/reexec.log")"
[[ $out =~ old\ image\ ([0-9]+)\ \|\ new\ image\ ([0-9]+) && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]] \
  || fail "the new image is another process: $out"
wait "$LAST_PID" || fail "the re-exec server failed: $(cat "$TMP/reexec.log")"
grep -q "moved here from another process" "$TMP/reexec.log" || fail "the connection did not move to the new image: $(cat "$TMP/reexec.log")"
ok "a server that re-execs itself with its connection: $out"

# --- a connection passed over SCM_RIGHTS to a helper, of the same user or not ------------------
cat >"$TMP/pass_connection.py" <<'PYEOF'
import os, pwd, socket, sys
host, port, drop = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "drop"
listener = socket.create_server((host, port))
parent_end, child_end = socket.socketpair()
if os.fork() == 0:  # the helper, forked before any connection exists
    listener.close()
    if drop:
        os.setgid(pwd.getpwnam("nobody").pw_gid)
        os.setuid(pwd.getpwnam("nobody").pw_uid)
    _, fds, _, _ = socket.recv_fds(child_end, 10, 1)
    c = socket.socket(fileno=fds[0])
    c.sendall(b"helper %d\n" % os.getuid())
    while data := c.recv(1 << 16):
        c.sendall(data)
    c.close()
    os._exit(0)
print("listening", flush=True)
c, _ = listener.accept()
c.sendall(b"parent %d\n" % os.getuid())
socket.send_fds(parent_end, [b"c"], [c.fileno()])
c.close()
_, status = os.wait()
sys.exit(os.waitstatus_to_exitcode(status))
PYEOF
for drop in keep drop; do
  ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
    "$PY" "$TMP/pass_connection.py" "$SERVER_IP" 7400 "$drop" >"$TMP/pass_$drop.log" 2>&1
  wait_for "$TMP/pass_$drop.log" "^listening" || fail "the passing server did not start: $(cat "$TMP/pass_$drop.log")"
  want_uid=0; [[ $drop == drop ]] && want_uid=$(id -u nobody)
  out=$(in_client "$PY" "$ROOT/tests/netns/greeted_echo.py" "$SERVER_IP" 7400 'parent 0' "helper $want_uid" 2>&1) \
    || fail "SCM_RIGHTS ($drop): $out $(cat "$TMP/pass_$drop.log")"
  wait "$LAST_PID" || fail "the passing server failed: $(cat "$TMP/pass_$drop.log")"
  timing="$(grep -o "[0-9]* bytes of state, handed off in [0-9]* us" "$TMP/pass_$drop.log" | head -1); $(grep -o "taken up [0-9]* us after the first call" "$TMP/pass_$drop.log" | head -1)"
  ok "a connection passed with SCM_RIGHTS to a helper child: $out ($timing)"
done

in_server "$MSCTL" --socket "$SOCK" status >"$TMP/status.txt"
# "connection hand-offs: W waiting, T taken, R taken back, D dropped"
taken=$(awk '/connection hand-offs/ {for (i = 1; i <= NF; i++) if ($i == "taken,") print $(i - 1)}' "$TMP/status.txt")
dropped=$(awk '/connection hand-offs/ {for (i = 1; i <= NF; i++) if ($i == "dropped") print $(i - 1)}' "$TMP/status.txt")
[[ ${taken:-0} -ge 15 ]] || fail "multistackd counted ${taken:-no} hand-offs taken, want at least 15: $(cat "$TMP/status.txt")"
[[ ${dropped:-1} -eq 0 ]] || fail "multistackd dropped ${dropped:-?} hand-offs"
ok "multistackd: $taken connections handed between processes, none dropped"

# --- a moved connection outlives a crash of the daemon ---------------------------------------
# The child that took the connection up keeps a copy of its claim's proof (ctl::Op::proof_copy),
# so that it proves the claim again when it attaches to the next daemon.
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
  "$PY" "$TMP/forking_server.py" "$SERVER_IP" 7500 >"$TMP/forking_crash.log" 2>&1
wait_claimed 7500 "ForkingTCPServer's listener"
cat >"$TMP/echo_across.py" <<'PYEOF'
import os, socket, sys, threading, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
def echo(n):  # reads while it sends: an echo larger than the buffers must not block both ends
    data = os.urandom(n)
    sender = threading.Thread(target=s.sendall, args=(data,))
    sender.start()
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(1 << 16)
        assert chunk, "the connection ended"
        got += chunk
    sender.join()
    assert got == data, "wrong bytes"
echo(100000)
print("moved", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
echo(2000000)
print("2 MB echoed byte-exact after the restart", flush=True)
PYEOF
ms_bg ip netns exec "$CLIENT_NS" "$PY" "$TMP/echo_across.py" "$SERVER_IP" 7500 "$TMP/go" >"$TMP/across.out" 2>&1
ACROSS=$LAST_PID
wait_for "$TMP/across.out" "moved" || fail "the connection did not reach the forked child: $(cat "$TMP/across.out")"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
sleep 1
mv "$TMP/daemon.log" "$TMP/daemon-before-crash.log"
ms_daemon --group nogroup
for _ in $(seq 50); do [[ $(grep -c "attached again" "$TMP/forking_crash.log") -ge 2 ]] && break; sleep 0.1; done
[[ $(grep -c "attached again" "$TMP/forking_crash.log") -ge 2 ]] ||
  fail "the listener and the child did not both attach again: $(cat "$TMP/forking_crash.log")"
touch "$TMP/go"
wait "$ACROSS" || fail "the moved connection did not outlive the crash: $(cat "$TMP/across.out"); $(cat "$TMP/forking_crash.log")"
ok "a connection moved to a forked child outlives a crash of the daemon (SIGKILL, a new daemon 1 s later): $(tail -1 "$TMP/across.out")"
