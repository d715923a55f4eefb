#!/usr/bin/env bash
# multistackd restarts, is upgraded and crashes under load, and no connection is lost
# (docs/DESIGN.md §6, "Restarts and upgrades"). Under load all along: wrk keep-alive
# against nginx under the preload (a master and two workers: a shared claim) and against
# ms-httpd, 100 MB echoed both ways through utcp-echo, and a UDP echo (ms-udp-echo) probed
# every millisecond:
#   - a planned upgrade (multistackd --upgrade) while a hostile client sends junk to the
#     control socket and another holds its session: every request, byte and datagram
#     arrives; the blackout is the probe's longest silence;
#   - SIGKILL, and a new daemon 1.5 s later: no connection lost, byte-exact;
#   - an application that dies with the daemon: its claim is adopted, then released at the
#     old daemon's outage limit;
#   - msctl status counts the restart and the upgrade;
#   - the systemd unit's restart, under a stand-in for systemd's notify socket and
#     file-descriptor store (said so loudly): a hand-over through the store, which the
#     applications do not notice;
#   - a spoiled record (unknown version, times out of range, a claim no daemon writes):
#     --upgrade refuses it, by a hand-over or by a restart, and the running daemon serves on;
#   - the daemon down past its outage limit: the preloaded program's socket fails with
#     ENETDOWN, utcp-echo, ms-httpd and ms-udp-echo exit, and nothing hangs.
# Usage: BIN_DIR=build daemon_restart.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
HTTPD="$BIN_DIR/tools/ms-httpd"
RECORD_TOOL="$BIN_DIR/tests/ms-record-tool"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
command -v nginx >/dev/null || fail "no nginx (scripts/setup.sh installs it)"
command -v wrk >/dev/null || fail "no wrk (scripts/setup.sh installs it)"
ms_setup "rs$$"
LIMIT_MS=5000
ms_daemon --outage-limit-ms "$LIMIT_MS"

www="$TMP/www"
mkdir -p "$www"
head -c 4096 /dev/urandom >"$www/4k.bin"
nginx_conf "$www"
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=1 \
  nginx -c "$TMP/nginx.conf" >"$TMP/nginx.log" 2>&1
ms_bg ip netns exec "$SERVER_NS" "$HTTPD" --transport utcp --socket "$SOCK" --listen "$SERVER_IP:80" --root "$www" \
  >"$TMP/httpd.log" 2>&1
HTTPD_PID=$LAST_PID
ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tools/utcp-echo" --socket "$SOCK" --listen "$SERVER_IP:7000" >"$TMP/utcp.log" 2>&1
UTCP_PID=$LAST_PID
ms_echo "$SERVER_IP:7007"
wait_for "$TMP/httpd.log" "serving" || fail "ms-httpd did not start: $(cat "$TMP/httpd.log")"
wait_for "$TMP/utcp.log" "echoing" || fail "utcp-echo did not start: $(cat "$TMP/utcp.log")"
for _ in $(seq 50); do in_server "$MSCTL" --socket "$SOCK" claims | grep -q ":8080" && break; sleep 0.1; done
in_client curl -sf -m 5 -o /dev/null "http://$SERVER_IP:8080/4k.bin" || fail "nginx under the preload does not serve"

# load SECONDS: starts the load in the background; load_check checks every part of it.
load() {
  local seconds=$1
  in_client wrk -t1 -c8 -d"${seconds}s" --timeout 10s "http://$SERVER_IP:8080/4k.bin" >"$TMP/wrk-nginx.out" 2>&1 &
  WRK_NGINX=$!
  in_client wrk -t1 -c8 -d"${seconds}s" --timeout 10s "http://$SERVER_IP:80/4k.bin" >"$TMP/wrk-httpd.out" 2>&1 &
  WRK_HTTPD=$!
  in_client "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" 7000 100000000 1 >"$TMP/echo.out" 2>&1 &
  ECHO=$!
  in_client "$PY" "$ROOT/tests/netns/udp_probe.py" "$SERVER_IP" 7007 "$seconds" >"$TMP/probe.out" 2>&1 &
  PROBE=$!
}
# load_check WHAT: every request, byte and datagram arrived; leaves the probe's JSON in $probe.
load_check() {
  local what=$1 name
  wait "$PROBE" || fail "$what: the UDP echo lost datagrams or bytes: $(cat "$TMP/probe.out")"
  wait "$ECHO" || fail "$what: the 100 MB echo: $(cat "$TMP/echo.out"); $(cat "$TMP/utcp.log")"
  for name in nginx httpd; do
    wait "$([[ $name == nginx ]] && echo "$WRK_NGINX" || echo "$WRK_HTTPD")" || true
    grep -q "Socket errors\|Non-2xx" "$TMP/wrk-$name.out" && fail "$what: wrk against $name: $(cat "$TMP/wrk-$name.out")"
    grep -q "requests in" "$TMP/wrk-$name.out" || fail "$what: wrk against $name did not run: $(cat "$TMP/wrk-$name.out")"
  done
  probe=$(cat "$TMP/probe.out")
}
requests() { awk '/requests in/ {print $1}' "$TMP/wrk-$1.out"; }

# --- a planned upgrade, with hostile clients on the control socket -----------------------------
cat >"$TMP/hostile.py" <<'PYEOF'
import os, socket, sys, time
junk = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
junk.connect(sys.argv[1])
holder = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
holder.connect(sys.argv[1])
spare = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:  # junk, and junk with descriptors; the holder never reads
    try:
        junk.send(os.urandom(64))
        socket.send_fds(holder, [os.urandom(32)], spare)
    except OSError:
        pass
    time.sleep(0.001)
print("hostile done")
PYEOF
# ports: each port's id and owner pid, as msctl lists them.
ports() { in_server "$MSCTL" --socket "$SOCK" --json ports | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(sorted((p["port"], p["pid"]) for p in (d["ports"] if isinstance(d, dict) else d)))'; }
# app_logs: what the applications logged (nginx's workers write the preload's lines to its error log).
app_logs() { cat "$TMP/utcp.log" "$TMP/httpd.log" "$TMP/nginx.log" "$TMP/nginx_error.log" "$TMP/echo.log" 2>/dev/null; }
load 6
ms_bg ip netns exec "$SERVER_NS" "$PY" "$TMP/hostile.py" "$SOCK" 3 >"$TMP/hostile.log" 2>&1
sleep 2
old_pid=$DAEMON_PID
ports_before=$(ports)
mv "$TMP/daemon.log" "$TMP/daemon-first.log"
ms_daemon --outage-limit-ms "$LIMIT_MS" --upgrade
kill -0 "$old_pid" 2>/dev/null && { sleep 1; kill -0 "$old_pid" 2>/dev/null && fail "the old daemon did not leave"; }
grep -q "handed over" "$TMP/daemon-first.log" || fail "the old daemon did not hand over: $(cat "$TMP/daemon-first.log")"
grep -q "took over" "$TMP/daemon.log" || fail "the new daemon did not take over: $(cat "$TMP/daemon.log")"
load_check "upgrade"
ok "planned upgrade (a hand-over) under load, hostile clients on the control socket: every byte of 100 MB echoed, nginx $(requests nginx) and ms-httpd $(requests httpd) requests without an error, UDP $probe"
grep "handed over" "$TMP/daemon-first.log" | sed 's/^/  /'
[[ $(ports) == "$ports_before" ]] || fail "the ports changed across the hand-over: $ports_before, then $(ports)"
app_logs | grep -q "went away\|attached again" && fail "an application noticed the hand-over: $(app_logs | grep "went away\|attached again")"
ok "the applications noticed only a pause: the same ports (ids and owners), no line in their logs"

# --- a hand-over the new daemon refuses: the running daemon serves on ----------------------------
load 4
sleep 1
out=$(in_server "$MSD" --iface "$SERVER_IF" --socket "$SOCK" --queues 2 --upgrade 2>&1) && fail "--upgrade took over with the wrong queues"
grep -q "keeps running" <<<"$out" || fail "no clear refusal of the hand-over: $out"
echo "  $out" | tail -1
kill -0 "$DAEMON_PID" || fail "the running daemon died after a refused hand-over"
wait_for "$TMP/daemon.log" "serving on" || fail "the running daemon did not say it serves on: $(cat "$TMP/daemon.log")"
load_check "refused hand-over"
ok "a hand-over the new daemon refuses (2 queues asked, 1 handed over): the running daemon serves on under load, every byte echoed, nginx $(requests nginx) and ms-httpd $(requests httpd) requests without an error, UDP $probe"

# --- SIGKILL, and a new daemon 1.5 s later -------------------------------------------------
# A second UDP echo dies with the daemon: its claim is adopted, and released when the
# old daemon's outage limit ends, unproved.
ms_bg ip netns exec "$SERVER_NS" "$ECHO_APP" --socket "$SOCK" --listen "$SERVER_IP:7008" >"$TMP/orphan.log" 2>&1
ORPHAN_PID=$LAST_PID
wait_for "$TMP/orphan.log" "echoes" || fail "the second ms-udp-echo did not start: $(cat "$TMP/orphan.log")"
load 7
sleep 2
kill -KILL "$DAEMON_PID"
kill -KILL "$ORPHAN_PID"
wait "$DAEMON_PID" 2>/dev/null || true
sleep 1.5
mv "$TMP/daemon.log" "$TMP/daemon-second.log"
ms_daemon --outage-limit-ms "$LIMIT_MS"
grep -q "died and left its XDP program" "$TMP/daemon.log" || fail "the new daemon did not find the claims: $(cat "$TMP/daemon.log")"
waiting=$(in_server "$MSCTL" --socket "$SOCK" status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["lifetime"]["adopted_claims_waiting"])')
load_check "SIGKILL"
ok "SIGKILL and a restart 1.5 s later under load: every byte of 100 MB echoed, nginx $(requests nginx) and ms-httpd $(requests httpd) requests without an error, UDP $probe"
[[ $waiting -ge 1 ]] || fail "the dead application's claim was not adopted ($waiting waiting)"
wait_for "$TMP/daemon.log" "were not proved again" || fail "the dead application's claim was not released at the outage limit"
ok "the claim of an application that died with the daemon was adopted, then released at the old daemon's outage limit"

status=$(in_server "$MSCTL" --socket "$SOCK" status --json)
restarts=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["lifetime"]["restarts"])' <<<"$status")
upgrades=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["lifetime"]["upgrades"])' <<<"$status")
[[ $restarts == 1 && $upgrades == 1 ]] || fail "msctl status counts $restarts restarts and $upgrades upgrades, not 1 and 1"
in_server "$MSCTL" --socket "$SOCK" status | grep "restart(s)" | sed 's/^/  /'
ok "msctl status shows the start time, 1 restart and 1 upgrade"

# --- the systemd unit's restart ------------------------------------------------------------------
# systemctl restart sends the unit's KillSignal, waits for the daemon to exit, and runs its
# ExecStart again, passing what the daemon stored in its file-descriptor store. The test
# never touches the host's systemd: it runs the unit's ExecStart under tests/netns/fd_store.py,
# a stand-in for systemd's notify socket and store, and says so loudly.
unit="$ROOT/dist/multistackd@.service.in"
kill_signal=$(sed -n 's/^KillSignal=SIG//p' "$unit")
start_args=$(sed -n 's/^ExecStart=@SBINDIR@\/multistackd //p' "$unit" | sed 's/--iface %i//')
grep -q "^Type=notify" "$unit" && grep -q "^FileDescriptorStoreMax=" "$unit" && [[ -n $kill_signal && $start_args == *--fd-store* ]] ||
  fail "the unit is not Type=notify with a KillSignal, a file-descriptor store and --fd-store: $(cat "$unit")"
echo "SKIPPED (systemctl): the host's systemd is not used; the unit's restart runs under a stand-in service manager (tests/netns/fd_store.py: KillSignal=SIG$kill_signal, the file-descriptor store, ExecStart)"
kill -USR2 "$DAEMON_PID"  # the daemon so far leaves for a restart; the stand-in starts the next
wait "$DAEMON_PID" 2>/dev/null || true
mv "$TMP/daemon.log" "$TMP/daemon-before-unit.log"
mkfifo "$TMP/manager.in"
exec {MANAGER}<>"$TMP/manager.in"  # read-write: opening it waits for nobody
# shellcheck disable=SC2086  # the unit's arguments, split as systemd splits them
ms_bg ip netns exec "$SERVER_NS" "$PY" "$ROOT/tests/netns/fd_store.py" --commands "$TMP/manager.in" "$kill_signal" "$MSD" --iface "$SERVER_IF" \
  --socket "$SOCK" $start_args >"$TMP/manager.out" 2>"$TMP/daemon.log"
wait_for "$TMP/manager.out" "ready" || fail "the unit's daemon did not report READY=1: $(cat "$TMP/manager.out")"
for log in utcp httpd; do
  for _ in $(seq 50); do [[ $(grep -c "attached again" "$TMP/$log.log") -ge 2 ]] && break; sleep 0.1; done
done
sleep 2.5  # past the applications' quiet period after attaching again
load 5
sleep 1.5
ports_before=$(ports)
noticed_before=$(app_logs | grep -c "attached again")
echo restart >&"$MANAGER"
for _ in $(seq 100); do [[ $(grep -c "ready" "$TMP/manager.out") -ge 2 ]] && break; sleep 0.1; done
[[ $(grep -c "ready" "$TMP/manager.out") -ge 2 ]] || fail "the unit's restart did not start a daemon: $(cat "$TMP/manager.out")"
load_check "the unit's restart"
grep -q "to the service manager's file-descriptor store" "$TMP/daemon.log" || fail "the daemon did not store its hand-over"
grep -q "took over" "$TMP/daemon.log" || fail "the next daemon did not take over from the store"
grep -q "ready.*keeping 0 descriptors" "$TMP/manager.out" || fail "the next daemon left its descriptors in the store: $(cat "$TMP/manager.out")"
[[ $(ports) == "$ports_before" ]] || fail "the ports changed across the unit's restart: $ports_before, then $(ports)"
[[ $(app_logs | grep -c "attached again") == "$noticed_before" ]] || fail "an application noticed the unit's restart"
ok "the unit's restart (a hand-over through the file-descriptor store) under load: every byte of 100 MB echoed, nginx $(requests nginx) and ms-httpd $(requests httpd) requests without an error, UDP $probe; the same ports, nothing in the applications' logs"
grep "stored\|ready" "$TMP/manager.out" | sed 's/^/  service manager: /'
echo stop >&"$MANAGER"
wait_for "$TMP/manager.out" "stopped" || fail "the stand-in did not stop the daemon"
exec {MANAGER}>&-
mv "$TMP/daemon.log" "$TMP/daemon-unit.log"
ms_daemon --outage-limit-ms "$LIMIT_MS"
for log in utcp httpd; do
  for _ in $(seq 50); do [[ $(grep -c "attached again" "$TMP/$log.log") -ge 3 ]] && break; sleep 0.1; done
done

# --- a spoiled record: --upgrade refuses it, the running daemon serves on ------------------------
load 8
for spoil in version limit claims; do
  in_server "$RECORD_TOOL" --iface "$SERVER_IF" --toggle "$spoil" | grep -q spoiled || fail "could not spoil the $spoil"
  # By a hand-over (the running daemon's socket), and by a restart (a socket nobody serves).
  for sock in "$SOCK" "$TMP/other.sock"; do
    out=$(in_server "$MSD" --iface "$SERVER_IF" --socket "$sock" --upgrade 2>&1) && fail "--upgrade took a spoiled $spoil"
    grep -q "keeps running" <<<"$out" || fail "no clear refusal of a spoiled $spoil: $out"
    kill -0 "$DAEMON_PID" || fail "the running daemon died after a refused upgrade"
    in_client curl -sf -m 5 -o /dev/null "http://$SERVER_IP:80/4k.bin" || fail "ms-httpd stopped serving after a refused upgrade"
    echo "  $(tail -1 <<<"$out")"
  done
  in_server "$RECORD_TOOL" --iface "$SERVER_IF" --toggle "$spoil" | grep -q mended || fail "could not mend the $spoil"
done
load_check "refused upgrades"
ok "a spoiled record or claim map: --upgrade refuses it, by a hand-over and by a restart, and the running daemon serves on under load: every byte of 100 MB echoed, nginx $(requests nginx) and ms-httpd $(requests httpd) requests without an error, UDP $probe"

# --- the daemon down past its outage limit: the sockets fail, nothing hangs ----------------------
# A restart (not a hand-over, in which the applications keep their sessions): the
# applications learn the shorter limit as they attach again.
kill -USR2 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
mv "$TMP/daemon.log" "$TMP/daemon-third.log"
ms_daemon --outage-limit-ms 1000
for log in utcp httpd; do
  for _ in $(seq 50); do [[ $(grep -c "attached again" "$TMP/$log.log") -ge 3 ]] && break; sleep 0.1; done
done
cat >"$TMP/held.py" <<'PYEOF'
import errno, socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 7300))
server.listen()
print("listening", flush=True)
conn, _ = server.accept()
conn.sendall(b"hello\n")
try:
    while conn.recv(100):
        pass
    print("end of stream", flush=True)
except OSError as e:
    print("recv failed:", errno.errorcode[e.errno], flush=True)
PYEOF
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_REQUIRE=1 \
  "$PY" "$TMP/held.py" "$SERVER_IP" >"$TMP/held.log" 2>&1
wait_for "$TMP/held.log" "listening" || fail "the preloaded server did not start: $(cat "$TMP/held.log")"
ms_bg ip netns exec "$CLIENT_NS" "$PY" -c "
import socket, sys, time
s = socket.create_connection(('$SERVER_IP', 7300), timeout=5)
assert s.recv(6) == b'hello\n'
print('connected', flush=True)
time.sleep(30)" >"$TMP/held-client.log" 2>&1
CLIENT=$LAST_PID
wait_for "$TMP/held-client.log" "connected" || fail "no connection to the preloaded server: $(cat "$TMP/held-client.log")"
# Under load too: wrk against both servers and a 100 MB echo, which must end, not hang.
in_client wrk -t1 -c8 -d4s --timeout 2s "http://$SERVER_IP:8080/4k.bin" >"$TMP/wrk-nginx.out" 2>&1 &
WRK_NGINX=$!
in_client wrk -t1 -c8 -d4s --timeout 2s "http://$SERVER_IP:80/4k.bin" >"$TMP/wrk-httpd.out" 2>&1 &
WRK_HTTPD=$!
in_client timeout 30 "$PY" "$ROOT/tests/netns/echo_check.py" "$SERVER_IP" 7000 100000000 1 >"$TMP/echo.out" 2>&1 &
ECHO=$!
sleep 1.5
killed_at=$(date +%s%N)
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
wait_for "$TMP/held.log" "recv failed" || fail "the preloaded program's socket did not fail: $(cat "$TMP/held.log")"
grep -q "ENETDOWN" "$TMP/held.log" || fail "the socket failed with another errno: $(cat "$TMP/held.log")"
for pid in "$UTCP_PID" "$HTTPD_PID" "$ECHO_PID"; do
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "an application still runs 5 s past the outage limit: $(cat "$TMP/utcp.log" "$TMP/httpd.log" "$TMP/echo.log")"
done
failed_ms=$((($(date +%s%N) - killed_at) / 1000000))
kill "$CLIENT" 2>/dev/null || true
grep -q "did not come back" "$TMP/utcp.log" || fail "utcp-echo did not say why it stopped: $(cat "$TMP/utcp.log")"
wait "$WRK_NGINX" "$WRK_HTTPD" || true
rc=0
wait "$ECHO" || rc=$?
((rc == 124)) && fail "the 100 MB echo hung instead of failing: $(cat "$TMP/echo.out")"
ok "the daemon down past its 1000 ms outage limit under load: the preloaded socket failed with ENETDOWN, utcp-echo, ms-httpd and ms-udp-echo exited, all within $failed_ms ms of the kill; the 100 MB echo ended ($(tail -1 "$TMP/echo.out")) and wrk ended, nothing hung"
