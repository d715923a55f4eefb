#!/usr/bin/env bash
# Coexistence on one interface. In the server namespace multistackd is attached to the
# veth; ms-udp-echo claims UDP SERVER_IP:7 through it, and a kernel HTTP server listens
# on 8080 at the same address. From the client namespace: the echo answers through the
# switch, the kernel server answers, ping is answered by the kernel, and a SYN to an
# unclaimed port gets the kernel's RST. msctl shows the port, its claim and counters.
#
# Usage: BIN_DIR=build coexistence.sh
source "$(dirname "$0")/lib.sh"
ms_setup "co$$"
ms_daemon
ok "$(grep 'attached to' "$TMP/daemon.log" | sed 's/^multistackd: //')"
echo hello >"$TMP/index.html"
ms_bg ip netns exec "$SERVER_NS" "$PY" -m http.server 8080 --bind "$SERVER_IP" --directory "$TMP" >/dev/null 2>&1
ms_echo "$SERVER_IP:7"

py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(20):
    msg = b'multistack echo %d' % i
    s.sendto(msg, ('$SERVER_IP', 7))
    data, peer = s.recvfrom(2048)
    assert data == msg and peer == ('$SERVER_IP', 7), (data, peer)
" || fail "UDP echo through the switch"
ok "UDP 7 is answered by the user-level application through the switch (20 datagrams, byte-exact)"

for _ in $(seq 50); do py_client "import urllib.request; urllib.request.urlopen('http://$SERVER_IP:8080/', timeout=1)" 2>/dev/null && break; sleep 0.1; done
py_client "
import urllib.request
body = urllib.request.urlopen('http://$SERVER_IP:8080/index.html', timeout=5).read()
assert body == b'hello\n', body
" || fail "kernel HTTP server on 8080"
ok "TCP 8080 is answered by the kernel's server at the same address"

in_client ping -c 3 -i 0.2 -W 2 "$SERVER_IP" >/dev/null || fail "ping"
ok "ping is answered by the kernel"

py_client "
import socket
try:
    socket.create_connection(('$SERVER_IP', 9), timeout=3)
    raise SystemExit('connected to an unclaimed port')
except ConnectionRefusedError:
    pass
" || fail "RST for an unclaimed TCP port"
ok "a SYN to an unclaimed port gets the kernel's RST"

# Capture the port's traffic while the client sends three more datagrams.
ms_bg ip netns exec "$SERVER_NS" "$MSCTL" --socket "$SOCK" capture 0 "$TMP/port0.pcap" --count 6 --seconds 10 \
  2>"$TMP/capture.log"
capture_pid=$LAST_PID
sleep 0.3
py_client "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(3):
    s.sendto(b'captured %d' % i, ('$SERVER_IP', 7))
    s.recvfrom(100)
" || fail "echo during capture"
wait "$capture_pid" || { cat "$TMP/capture.log"; fail "msctl capture failed"; }
frames=$(tcpdump -r "$TMP/port0.pcap" -n 2>/dev/null | grep -c "UDP, length 10")
[[ "$frames" -eq 6 ]] || { tcpdump -r "$TMP/port0.pcap" -n; fail "capture holds $frames frames, expected 3 in and 3 out"; }
ok "msctl capture wrote the port's 3 datagrams in and 3 out to a pcap file that tcpdump reads"

in_server "$MSCTL" --socket "$SOCK" claims | grep -q "udp $SERVER_IP:7" || fail "msctl claims does not list udp $SERVER_IP:7"
stats=$(in_server "$MSCTL" --socket "$SOCK" ports --json)
"$PY" -c "
import json, sys
ports = json.loads(sys.argv[1])
assert len(ports) == 1, ports
p = ports[0]
assert p['rx_frames'] >= 23 and p['tx_frames'] >= 23 and p['claims'] == 1 and not p['failed'], p
assert p['drops'] == {}, p
" "$stats" || fail "msctl ports: $stats"
ok "msctl lists the claim and counts every frame each way, with no drops"
# Next-hop resolution goes through the kernel's neighbour table (the daemon never ARPs).
in_server ip neigh flush all
mac=$(in_server "$MSCTL" --socket "$SOCK" resolve "$CLIENT_IP") || fail "resolve $CLIENT_IP"
[[ "$mac" == "$CLIENT_MAC" ]] || fail "resolve $CLIENT_IP gave $mac, expected $CLIENT_MAC"
ok "msctl resolve $CLIENT_IP gives $mac, resolved by the kernel from an empty neighbour table"
if out=$(in_server "$MSCTL" --socket "$SOCK" resolve 198.18.0.77 2>&1); then fail "resolved an absent host: $out"; fi
grep -q unreachable <<<"$out" || fail "unclear error for an absent host: $out"
if out=$(in_server "$MSCTL" --socket "$SOCK" resolve 198.19.255.1 2>&1); then fail "resolved an unroutable address"; fi
grep -q "no route" <<<"$out" || fail "unclear error for an unroutable address: $out"
ok "an absent neighbour is unreachable and an unroutable address has no route"
echo "coexistence: all checks passed"
