#!/usr/bin/env bash
# IPv6 through the whole system: the hosts get 2001:2::1 and 2001:2::2 beside
# their IPv4 addresses; neighbour discovery stays with the kernels.
#   - ping6 to the server is answered by its kernel;
#   - kernel client -> UTCP server and UTCP client -> kernel server over IPv6: 1 KB, 1 MB
#     and 100 MB, checked by SHA-256; a half close each way; a reset each way;
#   - dual stack: one ms-httpd on UTCP serves curl on 198.18.0.1 and on [2001:2::1],
#     byte-exact, while a kernel application keeps its own IPv6 port;
#   - UDP over IPv6: ms-udp-echo answers a kernel client.
# (What the switch refuses to send on IPv6 is checked frame by frame in validator_test.)
#
# Usage: BIN_DIR=build ipv6.sh
source "$(dirname "$0")/lib.sh"
HTTPD="$BIN_DIR/tools/ms-httpd"
ms_setup "v6$$"
ipv6_hosts
ms_daemon

in_client ping -6 -c 2 -W 2 -q "$SERVER6" >/dev/null || fail "ping6 to the server"
ok "ping6 is answered by the server's kernel"

interop_start "$SERVER6" "$CLIENT6"
grep -q "echoing tcp \[$SERVER6\]:7000" "$TMP/utcp.log" || fail "utcp-echo does not say where: $(cat "$TMP/utcp.log")"
interop_sizes "IPv6"
(($(jq -r .super_segments_out <<<"$out") > 1000)) || fail "no IPv6 super-segments for 100 MB: $out"
ok "the UTCP client sent $(jq -r .super_segments_out <<<"$out") IPv6 super-segments for 100 MB"

interop_closes "IPv6"

# A kernel client whose every packet carries a destination-options header (RFC 8200
# §4.6, IPV6_DSTOPTS): the XDP program walks it to the ports, and UTCP's input walks it
# too. Were it passed to the kernel, which holds the port but does not listen, the
# connection would be reset.
in_client "$PY" -c "
import os, socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
# next header (the kernel fills it in), length 0 (8 bytes), then PadN over the other 4
s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, 'IPV6_DSTOPTS', 59), bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.settimeout(10)
s.connect(('$SERVER6', 7000))
data = os.urandom(300000)
s.sendall(data)
got = b''
while len(got) < len(data):
    got += s.recv(65536)
assert got == data
" || fail "a client whose packets carry a destination-options header"
ok "IPv6 with a destination-options header on every packet: 300 KB echoed by UTCP, byte-exact"
kill -TERM "$UTCP_PID"
wait "$UTCP_PID" || fail "utcp-echo did not exit cleanly"

# Dual stack: one server on both families; a kernel application keeps its own IPv6 port.
mkdir -p "$TMP/www"
head -c 70000 /dev/urandom >"$TMP/www/blob"
ms_bg ip netns exec "$SERVER_NS" "$HTTPD" --socket "$SOCK" --listen "$SERVER_IP:8080" --listen "[$SERVER6]:8080" \
  --root "$TMP/www" >"$TMP/httpd.log" 2>&1
wait_for "$TMP/httpd.log" "serving" || { cat "$TMP/httpd.log"; fail "ms-httpd did not start on both families"; }
ms_bg ip netns exec "$SERVER_NS" "$PY" -m http.server --bind "$SERVER6" --directory "$TMP/www" 9000 >"$TMP/kernel-http.log" 2>&1
for url in "http://$SERVER_IP:8080/blob" "http://[$SERVER6]:8080/blob" "http://[$SERVER6]:9000/blob"; do
  for _ in $(seq 50); do in_client curl -s -g -o /dev/null "$url" && break; sleep 0.1; done
  in_client curl -sf -g -o "$TMP/got" "$url" || fail "curl $url"
  cmp -s "$TMP/got" "$TMP/www/blob" || fail "curl $url: the body differs"
done
claims=$(in_server "$MSCTL" --socket "$SOCK" claims --json)
jq -e '[.[] | select(.claim == "tcp '"$SERVER_IP"':8080" or .claim == "tcp ['"$SERVER6"']:8080")] | length == 2' <<<"$claims" >/dev/null ||
  fail "ms-httpd does not hold both claims: $claims"
jq -e '[.[] | select(.claim | endswith(":9000"))] | length == 0' <<<"$claims" >/dev/null || fail "the kernel's port 9000 is claimed: $claims"
ok "dual stack: one ms-httpd on UTCP serves curl on $SERVER_IP and [$SERVER6] byte-exact; the kernel's http.server keeps [$SERVER6]:9000"

# UDP over IPv6.
ms_echo "[$SERVER6]:5353"
in_client "$PY" -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for k in range(20):
    s.sendto(b'v6 datagram %d' % k, ('$SERVER6', 5353))
    assert s.recvfrom(100)[0] == b'v6 datagram %d' % k
" || fail "UDP echo over IPv6"
ok "UDP over IPv6: ms-udp-echo answers 20 datagrams from a kernel client"
echo "PASS"
