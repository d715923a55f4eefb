#!/usr/bin/env bash
# The main demo. It builds MultiStack if needed, then:
#  1. drives the switch in process and prints a throughput table: every frame is built
#     with its checksums, copied out of the sender's ring, validated (MAC, IP header and
#     checksum, claimed source 3-tuple), looked up and copied into the destination ring;
#  2. as root, runs the real thing between two network namespaces: multistackd on the
#     server's veth, ms-httpd on UTCP (the user-level TCP/IP stack) on port 80 of both
#     IPv4 and IPv6 and nginx on the kernel's TCP on port 8080 at the same address (plus
#     a user-level UDP echo on port 7); curl to both, ping (the kernel answers), msctl's
#     view, and a wrk comparison of the two web servers;
#  3. the paper's point, new transport features shipped with the application: three
#     unprivileged ms-httpd (uid 65534) on the same interface at once, one on CUBIC with
#     TCP Fast Open, one on Scalable TCP (an algorithm of the application's own,
#     tools/cc/scalable.hpp), one on BBR (paced; src/bbr, which Debian's kernel does not
#     have in this version), beside nginx on the kernel; curl --tcp-fastopen, and msctl
#     sockets showing each connection's congestion control and options, and BBR's model
#     of the path. No kernel setting changes for any of it. Then the client's link becomes
#     a 100 Mbit/s bottleneck with a deep buffer: BBR alone, UTCP's CUBIC alone, and both
#     beside a kernel CUBIC flow, with each download's rate and a ping that measures the queue;
#  4. the unmodified nginx binary on UTCP through libmultistack-preload.so (LD_PRELOAD):
#     its master opens the listener, its worker (uid 65534) serves it on its own UTCP
#     stack; curl, msctl claims, and wrk beside the same nginx on the kernel.
# Everything it makes is removed on exit, Ctrl-C included.
#
# Usage: scripts/demo.sh [--seconds S | --wrk-seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=1
wrk_seconds=10
case "${1:-}" in
  --seconds) seconds=$2 ;;
  --wrk-seconds) wrk_seconds=$2 ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

bash scripts/setup.sh nginx-light
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target ms-switch-bench ms-tcp-bench multistackd msctl ms-udp-echo ms-httpd multistack-preload >/dev/null

bench=build/bench/ms-switch-bench
row() {  # description, then ms-switch-bench arguments
  local what=$1
  shift
  local mpps gbps
  read -r mpps gbps < <("$bench" --seconds "$seconds" --json "$@" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.2f %.1f" % (r["mpps"], r["gbps"]))')
  printf '%-58s %10s %10s\n' "$what" "$mpps" "$gbps"
}

echo
echo "== 1. The switch in process, one worker thread (each row runs ${seconds}s)"
echo
printf '%-58s %10s %10s\n' "scenario" "Mpps" "Gbit/s"
printf '%-58s %10s %10s\n' "--------" "----" "------"
row "1 port sends 60-byte UDP frames to the NIC (tx)" --mode tx --ports 1 --size 60
row "NIC sends 60-byte frames to 1 port (rx)" --mode rx --ports 1 --size 60
row "254 ports send 60-byte frames to the NIC (tx)" --mode tx --ports 254 --size 60
row "NIC spreads 60-byte frames over 254 ports (rx)" --mode rx --ports 254 --size 60
row "1 port sends 1514-byte frames to the NIC (tx)" --mode tx --ports 1 --size 1514
row "peer: plain memcpy ring to ring, no switch logic, 60 bytes" --mode memcpy --size 60
echo
echo "10 GbE line rate is 14.88 Mpps at 60 bytes. Full sweep and peers: bench/switch.sh"

if ((EUID != 0)); then
  echo
  echo "== 2. skipped: the live demo needs root (network namespaces and XDP)"
  exit 0
fi

name="demo$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
  # Applications first, newest first, so that they release their claims while the
  # daemon (started first) still runs; then the daemon.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  bash scripts/netns.sh down "$name"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
eval "$(bash scripts/netns.sh up "$name")"
SERVER_IP6=2001:2::1
CLIENT_IP6=2001:2::2
ip -n "$SERVER_NS" addr add "$SERVER_IP6/64" dev "$SERVER_IF" nodad
ip -n "$CLIENT_NS" addr add "$CLIENT_IP6/64" dev "$CLIENT_IF" nodad
sock="$tmp/ms.sock"
srv() { ip netns exec "$SERVER_NS" "$@"; }
cli() { ip netns exec "$CLIENT_NS" "$@"; }

echo
echo "== 2. Live, between two network namespaces"
echo "   server $SERVER_IP and $SERVER_IP6 ($SERVER_IF), client $CLIENT_IP and $CLIENT_IP6 ($CLIENT_IF)"
echo
www="$tmp/www"
mkdir -p "$www"
chmod 755 "$tmp" "$www"
echo "<h1>MultiStack says hello</h1>" >"$www/index.html"
head -c 1024 /dev/urandom >"$www/1k.bin"
chmod 644 "$www"/*
# Background programs run under `ip netns exec` directly, so that $! is the program.
ip netns exec "$SERVER_NS" taskset -c 1 build/src/multistackd --iface "$SERVER_IF" --socket "$sock" --group nogroup \
  2>"$tmp/daemon.log" &
pids+=($!)
for _ in $(seq 50); do [[ -S "$sock" ]] && break; sleep 0.1; done
sed 's/^/   /' "$tmp/daemon.log"
ip netns exec "$SERVER_NS" taskset -c 1 build/tools/ms-httpd --transport utcp --socket "$sock" --listen "$SERVER_IP:80" \
  --listen "[$SERVER_IP6]:80" --root "$www" >"$tmp/httpd.log" 2>&1 &
pids+=($!)
ip netns exec "$SERVER_NS" build/tools/ms-udp-echo --socket "$sock" --listen "$SERVER_IP:7" >"$tmp/echo.log" &
pids+=($!)
cat >"$tmp/nginx.conf" <<NGINX
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; server { listen $SERVER_IP:8080; root $www; } }
NGINX
ip netns exec "$SERVER_NS" taskset -c 1 nginx -c "$tmp/nginx.conf" -g "daemon off;" &
pids+=($!)
sleep 1
sed 's/^/   /' "$tmp/httpd.log"

echo
echo "-- HTTP to $SERVER_IP:80: ms-httpd on UTCP, a user-level TCP/IP stack, through the switch:"
cli curl -s -i "http://$SERVER_IP/" | sed 's/\r$//; s/^/   /'
echo "-- HTTP to [$SERVER_IP6]:80: the same ms-httpd over IPv6 (one UTCP stack, both families):"
cli curl -s -g "http://[$SERVER_IP6]/" | sed 's/^/   /'
echo "-- HTTP to $SERVER_IP:8080: nginx on the kernel's TCP, at the same address:"
cli curl -s -i "http://$SERVER_IP:8080/" | sed 's/\r$//; s/^/   /'
echo "-- UDP to $SERVER_IP:7, another user-level application on the same switch:"
cli /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'hello, user-level stack', ('$SERVER_IP', 7))
print('   reply:', s.recvfrom(100)[0].decode())"
echo "-- ping, answered by the kernel:"
cli ping -c 2 -i 0.2 "$SERVER_IP" | sed -n '2,3p' | sed 's/^/   /'
echo "-- msctl status and claims:"
srv build/tools/msctl --socket "$sock" status | sed 's/^/   /'
srv build/tools/msctl --socket "$sock" claims | sed 's/^/   /'

echo
echo "-- wrk, ${wrk_seconds}s per row, 1 KB file, 64 connections (server side on core 1, wrk on core 0):"
printf '   %-34s %-12s %14s\n' "server" "connections" "requests/s"
wrk_row() {  # label, port, mode
  local extra=()
  [[ $3 == close ]] && extra=(-H "Connection: close")
  local rps
  rps=$(cli taskset -c 0 wrk -t1 -c64 -d"${wrk_seconds}s" "${extra[@]}" "http://$SERVER_IP:$2/1k.bin" |
    awk '/Requests\/sec/ {print $2}')
  printf '   %-34s %-12s %14s\n' "$1" "$3" "$rps"
}
for mode in keep-alive close; do
  wrk_row "ms-httpd on UTCP (port 80)" 80 "$mode"
  wrk_row "nginx on the kernel (port 8080)" 8080 "$mode"
done

echo
echo "== 3. Three TCPs side by side, each shipped with its application (uid 65534, no kernel change)"
echo
head -c 4000000 /dev/urandom >"$www/4m.bin"
head -c 16000000 /dev/urandom >"$www/16m.bin"
chmod 644 "$www/4m.bin" "$www/16m.bin"
nobody=(setpriv --reuid 65534 --regid 65534 --clear-groups)
ip netns exec "$SERVER_NS" "${nobody[@]}" build/tools/ms-httpd --socket "$sock" --listen "$SERVER_IP:8001" --root "$www" \
  --cc cubic --fast-open >"$tmp/httpd-cubic.log" 2>&1 &
pids+=($!)
ip netns exec "$SERVER_NS" "${nobody[@]}" build/tools/ms-httpd --socket "$sock" --listen "$SERVER_IP:8002" --root "$www" \
  --cc scalable >"$tmp/httpd-scalable.log" 2>&1 &
pids+=($!)
ip netns exec "$SERVER_NS" "${nobody[@]}" build/tools/ms-httpd --socket "$sock" --listen "$SERVER_IP:8004" --root "$www" \
  --cc bbr >"$tmp/httpd-bbr.log" 2>&1 &
pids+=($!)
sleep 1
sed 's/^/   /' "$tmp/httpd-cubic.log" "$tmp/httpd-scalable.log" "$tmp/httpd-bbr.log"
echo "-- curl --tcp-fastopen to :8001 twice: the first SYN asks for a cookie, the second carries the request:"
fast_open_acked() {  # the client kernel's count of SYN data acknowledged by servers
  cli awk '/^TcpExt:/ { if (!seen) { split($0, k); seen = 1 } else { split($0, v); for (i in k) if (k[i] == "TCPFastOpenActive") print v[i] } }' \
    /proc/net/netstat
}
before=$(fast_open_acked)
for i in 1 2; do
  cli curl -s --tcp-fastopen -o /dev/null -w "   fetch $i: HTTP %{http_code}, first byte after %{time_starttransfer}s\n" "http://$SERVER_IP:8001/"
done
echo "   requests the client's kernel sent in a SYN and UTCP acknowledged: $(($(fast_open_acked) - before))"
echo "-- three slow downloads (4 MB at about 1 MB/s), one from each; meanwhile, msctl sockets. BBR's line"
echo "   shows its phase, the bandwidth and minimum RTT it measured and the rate it paces to. The slow"
echo "   reader limits every download here, not the path: BBR keeps the path's estimate from the samples"
echo "   that the reader did not limit, and paces its bursts at that rate instead of sending them at once."
# A reader that takes 10 KB every 10 ms through a small receive buffer (curl's own
# --limit-rate does not hold a download back on Debian 12's curl 7.88).
slow_download() {  # port
  cli /usr/bin/python3 -c "
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(('$SERVER_IP', $1))
s.sendall(b'GET /4m.bin HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n')
while s.recv(10240):
    time.sleep(0.01)"
}
slow_download 8001 &
dl1=$!
slow_download 8002 &
dl2=$!
slow_download 8004 &
dl3=$!
sleep 2
srv build/tools/msctl --socket "$sock" sockets | sed 's/^/   /'
wait "$dl1" "$dl2" "$dl3"

echo "-- now the path has a bottleneck: the client's link takes 100 Mbit/s with a 1.5 MB tail-drop"
echo "   buffer (tbf, 120 ms at the rate), where the downloads queue. The kernel's flow comes from"
echo "   ms-tcp-bench on :8090 with TCP_CONGESTION cubic (this host's default is $(sysctl -n net.ipv4.tcp_congestion_control))."
echo "   A ping every 10 ms measures the queue while 16 MB downloads run:"
srv build/bench/ms-tcp-bench serve --stack kernel --listen "$SERVER_IP:8090" --mode source --bytes 16000000 --cc cubic \
  >"$tmp/kernel-source.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q serving "$tmp/kernel-source.log" && break; sleep 0.1; done
grep -q serving "$tmp/kernel-source.log" || { echo "the kernel's source did not start: $(cat "$tmp/kernel-source.log")" >&2; exit 1; }
cli ip link add ms_ifb type ifb
cli ip link set ms_ifb up
cli tc qdisc add dev ms_ifb root tbf rate 100mbit burst 3kb limit 1500000
cli tc qdisc add dev "$CLIENT_IF" handle ffff: ingress
cli tc filter add dev "$CLIENT_IF" parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ms_ifb
# bottleneck_downloads LABEL:PORT...: the downloads at once, each one's rate, and the
# median ping meanwhile. Each of them ends within 60 s on its own, whatever happens.
bottleneck_downloads() {
  local spec dl=()
  cli ping -n -i 0.01 -w 60 "$SERVER_IP" >"$tmp/ping.txt" 2>&1 &
  local ping=$!
  for spec in "$@"; do
    if [[ ${spec##*:} == 8090 ]]; then
      cli timeout 60 build/bench/ms-tcp-bench receive --connect "$SERVER_IP:8090" --bytes 16000000 |
        jq -r '"   '"${spec%%:*}"': \(.bytes / .seconds) B/s"' >"$tmp/dl-8090.txt" &
    else
      cli curl -s --max-time 60 -o /dev/null -w "   ${spec%%:*}: %{speed_download} B/s\n" "http://$SERVER_IP:${spec##*:}/16m.bin" \
        >"$tmp/dl-${spec##*:}.txt" &
    fi
    dl+=($!)
  done
  [[ $# -eq 3 ]] && { sleep 1; srv build/tools/msctl --socket "$sock" sockets | { grep -E "ESTAB.*:(8001|8004) " || true; } | sed 's/^/   /'; }
  wait "${dl[@]}"
  kill "$ping"; wait "$ping" 2>/dev/null || true
  for spec in "$@"; do
    awk '{ printf "   %-14s %3.0f Mbit/s\n", $1, $2 * 8 / 1e6 }' "$tmp/dl-${spec##*:}.txt"
  done
  grep -ao 'time=[0-9.]*' "$tmp/ping.txt" | cut -d= -f2 | sort -n |
    awk '{ v[NR] = $1 } END { printf "   median ping (the queue): %.1f ms over %d replies\n", v[int((NR + 1) / 2)], NR }'
}
echo "   BBR alone (UTCP):"
bottleneck_downloads "bbr:8004"
echo "   CUBIC alone (UTCP):"
bottleneck_downloads "cubic:8001"
echo "   both, beside the kernel's CUBIC, all three at once; msctl sockets midway:"
bottleneck_downloads "bbr:8004" "cubic:8001" "kernel_cubic:8090"
echo "   Alone, BBR paces near the bottleneck's rate from its model (bandwidth and min RTT) and keeps"
echo "   the queue short; CUBIC grows its window as far as its socket buffers let it, and what the"
echo "   path cannot carry yet waits in the queue, so its queue is longer."
echo "   Together, BBRv3 shares the link with both CUBIC flows, one of them the kernel's, rather than"
echo "   starving them, and all three wait behind the queue that CUBIC builds: its msctl line shows"
echo "   the phase it was in and the estimate it paced to. bench/tcp.sh bottleneck measures this on a"
echo "   20 ms path."
cli tc qdisc del dev "$CLIENT_IF" handle ffff: ingress
cli ip link del ms_ifb

echo
echo "== 4. The unmodified nginx binary on UTCP: LD_PRELOAD=build/src/libmultistack-preload.so"
echo
sed "s/:8080;/:8003;/; s|$tmp/nginx.pid|$tmp/nginx-utcp.pid|" "$tmp/nginx.conf" >"$tmp/nginx-utcp.conf"
ip netns exec "$SERVER_NS" taskset -c 1 env LD_PRELOAD="$PWD/build/src/libmultistack-preload.so" MULTISTACK_SOCKET="$sock" \
  MULTISTACK_LOG=2 nginx -c "$tmp/nginx-utcp.conf" -g "daemon off;" 2>"$tmp/nginx-utcp.log" &
pids+=($!)
sleep 1
sed 's/^/   /' "$tmp/nginx-utcp.log"
echo "-- HTTP to $SERVER_IP:8003: the same nginx binary as on :8080, on UTCP through the switch:"
cli curl -s -i "http://$SERVER_IP:8003/" | sed 's/\r$//; s/^/   /'
echo "-- msctl claims (the listener moved to the worker's own stack):"
srv build/tools/msctl --socket "$sock" claims | sed 's/^/   /'
echo "-- wrk, ${wrk_seconds}s per row, 1 KB file, 64 connections, keep-alive:"
wrk_row "nginx on UTCP, preloaded (8003)" 8003 keep-alive
wrk_row "nginx on the kernel (port 8080)" 8080 keep-alive
echo
echo "Done: everything is removed now."
