#!/usr/bin/env bash
# The main demo. It builds MultiStack if needed, then:
#  1. drives the switch in process and prints a throughput table: every frame is built
#     with its checksums, copied out of the sender's ring, validated (MAC, IP header and
#     checksum, claimed source 3-tuple), looked up and copied into the destination ring;
#  2. as root, runs the real thing between two network namespaces: multistackd on the
#     server's veth; a user-level UDP echo application on port 7, a TCP echo server on
#     UTCP (the user-level TCP/IP stack) on TCP port 7, and a kernel web server on port
#     8080, all at the same address and all answering the client; and msctl's view.
# Everything it makes is removed on exit, Ctrl-C included.
#
# Usage: scripts/demo.sh [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=1
case "${1:-}" in
  --seconds) seconds=$2 ;;
  -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target ms-switch-bench multistackd msctl ms-udp-echo utcp-echo >/dev/null

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
sock="$tmp/ms.sock"
srv() { ip netns exec "$SERVER_NS" "$@"; }
cli() { ip netns exec "$CLIENT_NS" "$@"; }

echo
echo "== 2. Live, between two network namespaces"
echo "   server $SERVER_IP ($SERVER_IF), client $CLIENT_IP ($CLIENT_IF)"
echo
# Background programs run under `ip netns exec` directly, so that $! is the program.
ip netns exec "$SERVER_NS" build/src/multistackd --iface "$SERVER_IF" --socket "$sock" 2>"$tmp/daemon.log" &
pids+=($!)
for _ in $(seq 50); do [[ -S "$sock" ]] && break; sleep 0.1; done
sed 's/^/   /' "$tmp/daemon.log"
ip netns exec "$SERVER_NS" build/tools/ms-udp-echo --socket "$sock" --listen "$SERVER_IP:7" >"$tmp/echo.log" &
pids+=($!)
ip netns exec "$SERVER_NS" build/tools/utcp-echo --socket "$sock" --listen "$SERVER_IP:7" >"$tmp/utcp.log" &
pids+=($!)
echo "MultiStack says hello" >"$tmp/index.html"
ip netns exec "$SERVER_NS" /usr/bin/python3 -m http.server 8080 --bind "$SERVER_IP" --directory "$tmp" >/dev/null 2>&1 &
pids+=($!)
sleep 1

echo
echo "-- UDP to $SERVER_IP:7, answered by a user-level application through the switch:"
cli /usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'hello, user-level stack', ('$SERVER_IP', 7))
print('   reply:', s.recvfrom(100)[0].decode())"
echo "-- TCP to $SERVER_IP:7, a kernel client answered by UTCP, a user-level TCP, through the switch:"
cli /usr/bin/python3 -c "
import hashlib, os, socket
data = os.urandom(1 << 20)
s = socket.create_connection(('$SERVER_IP', 7), timeout=5)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
back = b''.join(iter(lambda: s.recv(65536), b''))
print('   1 MB echoed back, SHA-256 %s' % ('equal' if hashlib.sha256(back).digest() == hashlib.sha256(data).digest() else 'DIFFERENT'))"
echo "-- HTTP to $SERVER_IP:8080, answered by a kernel server at the same address:"
cli /usr/bin/python3 -c "
import urllib.request
print('   reply:', urllib.request.urlopen('http://$SERVER_IP:8080/index.html', timeout=3).read().decode().strip())"
echo "-- ping, answered by the kernel:"
cli ping -c 2 -i 0.2 "$SERVER_IP" | sed -n '2,3p' | sed 's/^/   /'
echo "-- msctl status, ports and claims:"
srv build/tools/msctl --socket "$sock" status | sed 's/^/   /'
srv build/tools/msctl --socket "$sock" ports | sed 's/^/   /'
srv build/tools/msctl --socket "$sock" claims | sed 's/^/   /'
echo
echo "Done: everything is removed now."
