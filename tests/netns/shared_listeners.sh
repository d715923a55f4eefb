#!/usr/bin/env bash
# Shared claims (docs/DESIGN.md §4.2): one listener served by several processes under the
# preload, each with its own UTCP stack and port.
#   - nginx with 2 workers under wrk: both workers' pids are in the access log, and
#     msctl claims shows the group (the master standing by, both workers serving, each
#     with a share of the new connections);
#   - nginx with 2 workers and `listen ... reuseport` (the master opens one socket per
#     worker, each worker presents its own): both workers serve;
#   - apache2 with mpm_event, then mpm_prefork, 2 children that run as nobody (they join
#     with the proof socket they inherited from root's master): both children serve;
#   - nginx with 4 workers under wrk (Connection: close, thousands of connections): each
#     worker's share is within 15 % of the mean;
#   - nginx with 4 workers, 32 keep-alive connections open (each answer names its worker):
#     one worker is killed; every connection of the other workers still answers, and no
#     new connection goes to the dead worker;
#   - separate Python processes that bind one TCP port with SO_REUSEPORT: 40 connections
#     open, a third process joins, every connection keeps its server, and new connections
#     reach all 3;
#     another user's process cannot join (the kernel refuses its bind, EADDRINUSE), nor
#     can a socket without SO_REUSEPORT;
#   - 2 Python processes share a UDP port with SO_REUSEPORT: every datagram is answered,
#     by both;
#   - ms-httpd --workers 2 (the event API sharing a port): both workers serve; under a
#     SYN flood against them, multistackd's memory stays bounded and real requests are
#     all answered.
# Usage: BIN_DIR=build shared_listeners.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
MSCTL="$BIN_DIR/tools/msctl"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
ms_setup "sl$$"
ms_daemon --group nogroup  # apache2's children run as nobody
www="$TMP/www"
mkdir -p "$www"
echo "<h1>MultiStack</h1>" >"$www/index.html"

# nginx_start WORKERS PORT [LISTEN_FLAGS]: nginx under the preload; every answer names its
# worker's pid.
nginx_start() {
  cat >"$TMP/nginx$2.conf" <<EOF
user root;
worker_processes $1;
daemon off;
pid $TMP/nginx$2.pid;
error_log $TMP/nginx$2_error.log;
events { worker_connections 1024; }
http {
  log_format worker '\$pid';
  access_log $TMP/access$2.log worker;
  keepalive_requests 100000;
  server { listen $SERVER_IP:$2 ${3:-}; root $www; add_header X-Worker \$pid; }
}
EOF
  ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
    nginx -c "$TMP/nginx$2.conf" >"$TMP/nginx$2.log" 2>&1
  wait_for "$TMP/nginx$2.log" "listening on $SERVER_IP:$2 over UTCP" || fail "nginx's listener is not on UTCP: $(cat "$TMP/nginx$2.log")"
  local n
  for _ in $(seq 100); do
    n=$(grep -c "joins tcp $SERVER_IP:$2\$" "$TMP/daemon.log" || true)
    ((n >= $1)) && return 0
    sleep 0.1
  done
  fail "only $n of $1 nginx workers joined the listener: $(cat "$TMP/daemon.log")"
}
workers_of() { pgrep -P "$(cat "$TMP/nginx$1.pid")" | sort; }

# --- nginx with 2 workers: both serve ---------------------------------------------------
nginx_start 2 8080
out=$(in_client wrk -t1 -c64 -d3 -H "Connection: close" "http://$SERVER_IP:8080/index.html")
grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against nginx with 2 workers: $out"
mapfile -t workers < <(workers_of 8080)
((${#workers[@]} == 2)) || fail "nginx has ${#workers[@]} workers, not 2"
for w in "${workers[@]}"; do
  served=$(grep -cx "$w" "$TMP/access8080.log" || true)
  ((served > 100)) || fail "nginx worker $w served $served requests: $(sort "$TMP/access8080.log" | uniq -c)"
done
ok "nginx with 2 workers on UTCP: both served ($(sort "$TMP/access8080.log" | uniq -c | awk '{print $1}' | paste -sd/) requests)"
claims=$(in_server "$MSCTL" --socket "$SOCK" claims --json)
"$PY" - "$claims" "$SERVER_IP" <<'EOF' || fail "msctl claims: $claims"
import json, sys
members = [c for c in json.loads(sys.argv[1]) if c["claim"] == f"tcp {sys.argv[2]}:8080"]
assert len(members) == 3 and all(m["shared"] and m["members"] == 3 for m in members), members
standby = [m for m in members if m["role"] == "standby"]
serving = [m for m in members if m["role"] == "serving"]
assert len(standby) == 1 and standby[0]["founder"] and standby[0]["new_connections"] == 0, members
assert len(serving) == 2 and all(m["share"] > 0.2 for m in serving), members
EOF
ok "msctl claims: the master stands by, the 2 workers serve, each with its share of new connections"
in_server "$MSCTL" --socket "$SOCK" stats | grep -q "each member's share of new connections" || fail "msctl stats shows no shares"

# --- nginx listen ... reuseport: the master opens one socket per worker ----------------
nginx_start 2 8082 reuseport
out=$(in_client wrk -t1 -c64 -d3 -H "Connection: close" "http://$SERVER_IP:8082/index.html")
grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against nginx with reuseport: $out"
for w in $(workers_of 8082); do
  served=$(grep -cx "$w" "$TMP/access8082.log" || true)
  ((served > 100)) || fail "nginx worker $w (reuseport) served $served requests: $(sort "$TMP/access8082.log" | uniq -c)"
done
grep -q "kernel" <(grep "$SERVER_IP:8082" "$TMP/nginx8082.log") && fail "a reuseport socket stayed with the kernel: $(cat "$TMP/nginx8082.log")"
ok "nginx listen ... reuseport with 2 workers on UTCP: both served ($(sort "$TMP/access8082.log" | uniq -c | awk '{print $1}' | paste -sd/) requests)"

# --- apache2, mpm_event and mpm_prefork: 2 children (user nobody) serve -----------------
# apache_start MPM PORT
apache_start() {
  cat >"$TMP/apache$2.conf" <<EOF
ServerRoot /usr/lib/apache2
LoadModule mpm_$1_module modules/mod_mpm_$1.so
LoadModule authz_core_module modules/mod_authz_core.so
ServerName multistack-test
Listen $SERVER_IP:$2
PidFile $TMP/apache$2.pid
Mutex file:$TMP default
ErrorLog $TMP/apache$2_error.log
LogFormat "%P" worker
CustomLog $TMP/access$2.log worker
DocumentRoot $www
User nobody
Group nogroup
StartServers 2
ServerLimit 2
<IfModule mpm_prefork_module>
MinSpareServers 2
MaxSpareServers 2
MaxRequestWorkers 2
</IfModule>
<IfModule mpm_event_module>
ThreadsPerChild 25
MaxRequestWorkers 50
MinSpareThreads 25
MaxSpareThreads 50
</IfModule>
EOF
  # its own session: apache2 signals its whole process group when it stops
  ms_bg setsid ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
    /usr/sbin/apache2 -f "$TMP/apache$2.conf" -DFOREGROUND >"$TMP/apache$2.log" 2>&1
  wait_for "$TMP/apache$2.log" "listening on $SERVER_IP:$2 over UTCP" || fail "apache2's listener is not on UTCP: $(cat "$TMP/apache$2.log")"
  local n
  for _ in $(seq 100); do
    # apache2 sends its children's stderr to its error log
    n=$(cat "$TMP/apache$2.log" "$TMP/apache$2_error.log" 2>/dev/null | grep -c "joined this process's stack" || true)
    ((n >= 2)) && return 0
    sleep 0.1
  done
  fail "only $n of 2 apache2 $1 children joined the listener: $(cat "$TMP/apache$2.log" "$TMP/apache$2_error.log")"
}
apache_port=8083
for mpm in event prefork; do
  apache_start "$mpm" "$apache_port"
  out=$(in_client wrk -t1 -c16 -d3 -H "Connection: close" "http://$SERVER_IP:$apache_port/index.html")
  grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against apache2 $mpm: $out"
  mapfile -t children < <(sort -u "$TMP/access$apache_port.log")
  ((${#children[@]} == 2)) || fail "apache2 $mpm: ${#children[@]} children served, not 2: $(sort "$TMP/access$apache_port.log" | uniq -c)"
  for c in "${children[@]}"; do
    served=$(grep -cx "$c" "$TMP/access$apache_port.log")
    ((served > 100)) || fail "apache2 $mpm child $c served $served requests"
  done
  ok "apache2 mpm_$mpm with 2 children (user nobody) on UTCP: both served ($(sort "$TMP/access$apache_port.log" | uniq -c | awk '{print $1}' | paste -sd/) requests)"
  kill "$LAST_PID"
  wait "$LAST_PID" 2>/dev/null || true
  apache_port=$((apache_port + 1))
done

# --- nginx with 4 workers: one is killed, the others' connections go on ----------------
nginx_start 4 8081
out=$(in_client wrk -t1 -c64 -d3 -H "Connection: close" "http://$SERVER_IP:8081/index.html")
grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against nginx with 4 workers: $out"
"$PY" - "$TMP/access8081.log" <<'EOF' || fail "nginx with 4 workers is not balanced: $(sort "$TMP/access8081.log" | uniq -c)"
import collections, sys
counts = collections.Counter(open(sys.argv[1]).read().split())
total = sum(counts.values())
mean = total / 4
assert len(counts) == 4 and total >= 4000, counts
assert all(abs(n - mean) <= 0.15 * mean for n in counts.values()), counts
EOF
ok "nginx with 4 workers: $(wc -l <"$TMP/access8081.log") connections, each worker within 15% of the mean ($(sort "$TMP/access8081.log" | uniq -c | awk '{print $1}' | paste -sd/))"
: >"$TMP/access8081.log"
cat >"$TMP/keepalive.py" <<'EOF'
import http.client, os, signal, sys, time
host, port = sys.argv[1], int(sys.argv[2])
conns = [http.client.HTTPConnection(host, port, timeout=10) for _ in range(32)]

def ask(c):
    c.request("GET", "/index.html")
    r = c.getresponse()
    r.read()
    return r.getheader("X-Worker")

owners = [ask(c) for c in conns]
assert len(set(owners)) >= 3, f"32 connections reached only {sorted(set(owners))}"
victim = owners[0]
os.kill(int(victim), signal.SIGKILL)  # the namespaces share one pid space
time.sleep(1)
for c, w in zip(conns, owners):
    if w == victim:
        continue
    for _ in range(3):
        assert ask(c) == w, "a connection moved to another worker"
fresh = set()
for _ in range(64):
    c = http.client.HTTPConnection(host, port, timeout=10)
    fresh.add(ask(c))
    c.close()
assert victim not in fresh, f"a new connection went to the dead worker {victim}"
print(f"worker {victim} killed; the {sum(w != victim for w in owners)} connections of the others answered;"
      f" 64 new ones went to {sorted(fresh)}", flush=True)
EOF
result=$(in_client "$PY" "$TMP/keepalive.py" "$SERVER_IP" 8081 2>&1) || fail "nginx with 4 workers, one killed: $result"
ok "nginx with 4 workers: $result"

# --- SO_REUSEPORT: separate processes, one TCP port; one joins under load -------------
cat >"$TMP/reuseport_server.py" <<'EOF'
import os, socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
print("serving", flush=True)

def answer(c):  # each line asked is answered with this process's pid, until the peer closes
    with c:
        while c.recv(100):
            c.sendall(str(os.getpid()).encode())

while True:
    threading.Thread(target=answer, args=(s.accept()[0],), daemon=True).start()
EOF
reuseport_server() {
  ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_REQUIRE=1 \
    "$PY" "$TMP/reuseport_server.py" "$SERVER_IP" 8090 >"$TMP/reuseport$1.log" 2>&1
  wait_for "$TMP/reuseport$1.log" "serving" || fail "SO_REUSEPORT server $1: $(cat "$TMP/reuseport$1.log")"
}
reuseport_server 1
reuseport_server 2
cat >"$TMP/persistent.py" <<'EOF'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
ask = lambda c: (c.sendall(b"who"), c.recv(100).decode())[1]
conns = [socket.create_connection((host, port), timeout=10) for _ in range(40)]
owners = [ask(c) for c in conns]
print("open", len(set(owners)), flush=True)
sys.stdin.readline()  # the driver starts a third server: a member joins
for c, w in zip(conns, owners):
    for _ in range(3):
        assert ask(c) == w, "an established connection moved to another member"
fresh = set()
for _ in range(60):
    c = socket.create_connection((host, port), timeout=10)
    fresh.add(ask(c))
    c.close()
print(f"{len(conns)} connections kept their server across the join; new ones reached {len(fresh | set(owners))} servers", flush=True)
EOF
mkfifo "$TMP/go"
in_client "$PY" "$TMP/persistent.py" "$SERVER_IP" 8090 <"$TMP/go" >"$TMP/persistent.log" 2>&1 &
CLIENT_PID=$!
exec 7>"$TMP/go"
wait_for "$TMP/persistent.log" "open" || fail "persistent clients: $(cat "$TMP/persistent.log")"
reuseport_server 3
echo go >&7
exec 7>&-
wait "$CLIENT_PID" || fail "a member joined under load: $(cat "$TMP/persistent.log")"
result=$(tail -1 "$TMP/persistent.log")
[[ $result == *"reached 3 servers" ]] || fail "after the join: $result"
ok "SO_REUSEPORT, 3 separate processes under the preload: $result"
# The errno of a bind to (argv 1, argv 2), with SO_REUSEPORT if argv 3 is 1; or "bound".
try_bind='
import socket, sys
s = socket.socket()
if sys.argv[3] == "1":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
    print("bound")
except OSError as e:
    print(e.errno)'
err=$(in_server setpriv --reuid=65534 --regid=65534 --clear-groups env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" \
  "$PY" -c "$try_bind" "$SERVER_IP" 8090 1 2>/dev/null)
[[ $err == 98 ]] || fail "another user's SO_REUSEPORT socket bound the shared port: $err"
err=$(in_server "$PY" -c "$try_bind" "$SERVER_IP" 8090 0)
[[ $err == 98 ]] || fail "a kernel socket without SO_REUSEPORT bound the shared port: $err"
ok "another user's process, and a kernel socket without SO_REUSEPORT, cannot join (EADDRINUSE)"

# --- SO_REUSEPORT: UDP ------------------------------------------------------------------
cat >"$TMP/reuseport_udp.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
print("serving", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data + b" " + str(os.getpid()).encode(), peer)
EOF
for i in 1 2; do
  ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_REQUIRE=1 \
    "$PY" "$TMP/reuseport_udp.py" "$SERVER_IP" 8091 >"$TMP/reuseport_udp$i.log" 2>&1
  wait_for "$TMP/reuseport_udp$i.log" "serving" || fail "SO_REUSEPORT UDP server $i: $(cat "$TMP/reuseport_udp$i.log")"
done
result=$(in_client "$PY" -c "
import socket
answered, pids = 0, set()
for flow in range(40):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    for n in range(10):
        msg = f'{flow}.{n}'.encode()
        c.sendto(msg, ('$SERVER_IP', 8091))
        data, _ = c.recvfrom(2048)
        echoed, pid = data.rsplit(b' ', 1)
        assert echoed == msg, (echoed, msg)
        answered += 1
        pids.add(pid)
    c.close()
print(answered, len(pids))") || fail "UDP clients of the SO_REUSEPORT servers: $result"
[[ $result == "400 2" ]] || fail "UDP SO_REUSEPORT group: answered, servers = $result (want 400 2)"
ok "2 processes with SO_REUSEPORT on one UDP port: all 400 datagrams answered, by both"

# --- ms-httpd --workers 2: the event API in a group ------------------------------------
ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tools/ms-httpd" --transport utcp --socket "$SOCK" --listen "$SERVER_IP:8092" \
  --root "$www" --workers 2 >"$TMP/httpd.log" 2>&1
HTTPD_PID=$LAST_PID
wait_for "$TMP/httpd.log" "2 workers share the port" || fail "ms-httpd --workers 2: $(cat "$TMP/httpd.log")"
for _ in $(seq 100); do
  (($(grep -c "serving" "$TMP/httpd.log") >= 2)) && break
  sleep 0.1
done
out=$(in_client wrk -t1 -c32 -d2 -H "Connection: close" "http://$SERVER_IP:8092/index.html")
grep -q "Socket errors\|Non-2xx" <<<"$out" && fail "wrk against ms-httpd --workers 2: $out"

# A SYN flood against the group (spoofed: nobody answers the SYN-ACKs): the daemon's memory
# stays bounded, and 200 real requests made meanwhile are all answered.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
rss_before=$(rss)
SUBNET=${SERVER_IP%.*}
in_server ip neigh replace "$SUBNET.77" lladdr "$CLIENT_MAC" dev "$SERVER_IF" nud permanent
ms_bg ip netns exec "$CLIENT_NS" "$BIN_DIR/tests/ms-syn-flood" --dev "$CLIENT_IF" --src "$SUBNET.77" \
  --src-mac "$CLIENT_MAC" --dst "$SERVER_IP" --dst-mac "$SERVER_MAC" --port 8092 --rate 50000 --seconds 4 >"$TMP/flood.json"
FLOOD_PID=$LAST_PID
sleep 1
answered=$(in_client "$PY" -c "
import http.client
ok = 0
for _ in range(200):
    c = http.client.HTTPConnection('$SERVER_IP', 8092, timeout=10)
    c.request('GET', '/index.html')
    ok += c.getresponse().status == 200
    c.close()
print(ok)") || fail "requests to the group during a SYN flood failed: $answered"
wait "$FLOOD_PID" || fail "ms-syn-flood failed"
rss_after=$(rss)
((answered == 200)) || fail "only $answered of 200 requests were answered during the SYN flood"
((rss_after - rss_before < 32768)) || fail "the daemon grew from $rss_before to $rss_after KiB under a SYN flood"
flows=$(in_server "$MSCTL" --socket "$SOCK" claims --json | jq "[.[] | select(.claim == \"tcp $SERVER_IP:8092\") | .group_flows] | max")
ok "SYN flood of $(jq .sent "$TMP/flood.json") SYNs against the group: 200 requests answered meanwhile; multistackd $rss_before -> $rss_after KiB; $flows flows recorded"
kill -TERM "$HTTPD_PID"
wait "$HTTPD_PID" || fail "ms-httpd --workers 2 did not end well: $(cat "$TMP/httpd.log")"
served=$(grep '"requests"' "$TMP/httpd.log" | "$PY" -c "
import json, sys
print(' '.join(str(json.loads(l)['requests']) for l in sys.stdin))")
read -ra counts <<<"$served"
((${#counts[@]} == 2 && counts[0] > 100 && counts[1] > 100)) || fail "ms-httpd --workers 2: requests per worker: $served"
ok "ms-httpd --workers 2 on UTCP: both workers served (${counts[0]}/${counts[1]} requests), both ended on SIGTERM"
