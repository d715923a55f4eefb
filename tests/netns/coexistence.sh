#!/usr/bin/env bash
# Coexistence on one interface (issue: multistackd on a real NIC, §6). In the server
# namespace the switch is attached to the veth by ms-nic-echo, whose port claims UDP
# SERVER_IP:7; a kernel HTTP server listens on 8080 at the same address. From the client
# namespace: the echo answers through the switch, the kernel server answers, ping is
# answered by the kernel, a SYN to an unclaimed port gets the kernel's RST. After
# SIGTERM no XDP program is left and the kernel owns UDP 7 again.
#
# Usage: coexistence.sh PATH/TO/ms-nic-echo
set -euo pipefail
echo_bin=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ((EUID != 0)); then
  echo "SKIPPED: netns tests need root (network namespaces and XDP)"
  exit 77
fi

name="co$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash "$root/scripts/netns.sh" down "$name"
  rm -rf "$tmp"
}
trap cleanup EXIT
eval "$(bash "$root/scripts/netns.sh" up "$name")"

fail() { echo "FAIL: $*"; [[ -f $tmp/echo.err ]] && sed 's/^/  ms-nic-echo: /' "$tmp/echo.err"; exit 1; }
ok() { echo "ok - $*"; }
in_client() { ip netns exec "$CLIENT_NS" "$@"; }
py() { in_client /usr/bin/python3 -c "$1"; }

ip netns exec "$SERVER_NS" /usr/bin/python3 -m http.server 8080 --bind "$SERVER_IP" --directory "$tmp" \
  >/dev/null 2>&1 &
pids+=($!)
ip netns exec "$SERVER_NS" "$echo_bin" --iface "$SERVER_IF" --addr "$SERVER_IP" --port 7 \
  >"$tmp/echo.out" 2>"$tmp/echo.err" &
echo_pid=$!
pids+=("$echo_pid")
for _ in $(seq 100); do grep -q '"ready":true' "$tmp/echo.out" 2>/dev/null && break; sleep 0.1; done
grep -q '"ready":true' "$tmp/echo.out" || fail "ms-nic-echo did not come up"
ok "switch attached: $(head -1 "$tmp/echo.out")"

py "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(20):
    msg = b'multistack echo %d' % i
    s.sendto(msg, ('$SERVER_IP', 7))
    data, peer = s.recvfrom(2048)
    assert data == msg, (data, msg)
    assert peer == ('$SERVER_IP', 7), peer
" || fail "UDP echo through the switch"
ok "UDP 7 is answered by the port, through the switch (20 datagrams, byte-exact)"

echo hello >"$tmp/index.html"
py "
import urllib.request
body = urllib.request.urlopen('http://$SERVER_IP:8080/index.html', timeout=5).read()
assert body == b'hello\n', body
" || fail "kernel HTTP server on 8080"
ok "TCP 8080 is answered by the kernel's server at the same address"

in_client ping -c 3 -i 0.2 -W 2 "$SERVER_IP" >/dev/null || fail "ping"
ok "ping is answered by the kernel"

py "
import socket
try:
    socket.create_connection(('$SERVER_IP', 9), timeout=3)
    raise SystemExit('connected to an unclaimed port')
except ConnectionRefusedError:
    pass
" || fail "RST for an unclaimed TCP port"
ok "a SYN to an unclaimed port gets the kernel's RST"

kill -TERM "$echo_pid"
wait "$echo_pid" || fail "ms-nic-echo exited with an error"
stats=$(tail -1 "$tmp/echo.out")
/usr/bin/python3 -c "
import json, sys
s = json.loads(sys.argv[1])
assert s['echoed'] >= 20 and s['port_tx'] >= 20, s
assert s['port_drops'] == 0, s
assert s['xdp_claimed'] >= 20 and s['xdp_passed'] > 0, s
" "$stats" || fail "counters after shutdown: $stats"
ok "counters: $stats"

if ip -n "$SERVER_NS" -d link show "$SERVER_IF" | grep -q 'prog/xdp'; then fail "an XDP program is left on $SERVER_IF"; fi
ok "no XDP program is left on the interface"

py "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(('$SERVER_IP', 7))
s.send(b'anyone?')
try:
    s.recv(100)
    raise SystemExit('UDP 7 still answered after shutdown')
except ConnectionRefusedError:
    pass
" || fail "kernel owns UDP 7 again"
ok "after shutdown the kernel answers UDP 7 (port unreachable)"
echo "coexistence: all checks passed"
