#!/usr/bin/env bash
# TCP Fast Open (RFC 7413) between UTCP and the Linux kernel, both ways:
#   - curl --tcp-fastopen (kernel client, net.ipv4.tcp_fastopen=3) fetches from ms-httpd
#     --fast-open on UTCP three times: the first SYN asks for a cookie, the next two carry
#     the request with the cookie, UTCP acknowledges it in the SYN,ACK (the kernel counts
#     TCPFastOpenActive) and the bodies are byte-exact;
#   - utcp-echo --fast-open (UTCP client) against a kernel echo server with TCP_FASTOPEN:
#     three rounds, the first learns the cookie, the next two send their data in the SYN
#     and the kernel takes it (TCPFastOpenPassive); every echo is checked byte by byte.
# The SYNs are captured and must show the option and data both ways.
#
# Usage: BIN_DIR=build fast_open.sh
source "$(dirname "$0")/lib.sh"
HTTPD="$BIN_DIR/tools/ms-httpd"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
PEER="$ROOT/tests/netns/tcp_peer.py"
command -v curl >/dev/null || fail "curl is not installed"
ms_setup "tf$$"
ms_daemon

# tcpext NAME: the kernel's TcpExt counter NAME in the client namespace.
tcpext() {
  in_client awk -v name="$1" '/^TcpExt:/ { if (!seen) { split($0, keys); seen = 1 } else { split($0, values);
    for (i in keys) if (keys[i] == name) print values[i] } }' /proc/net/netstat
}

in_client sysctl -qw net.ipv4.tcp_fastopen=3
ms_bg ip netns exec "$CLIENT_NS" tcpdump -i "$CLIENT_IF" -n -v -l 'tcp[tcpflags] & tcp-syn != 0' >"$TMP/syn.txt" 2>"$TMP/syn.log"
TCPDUMP_PID=$LAST_PID
wait_for "$TMP/syn.log" "listening on" || fail "tcpdump did not start"

mkdir "$TMP/www"
head -c 3000 /dev/urandom >"$TMP/www/page.bin"
ms_bg ip netns exec "$SERVER_NS" "$HTTPD" --socket "$SOCK" --listen "$SERVER_IP:8080" --root "$TMP/www" --fast-open >"$TMP/httpd.log" 2>&1
wait_for "$TMP/httpd.log" "serving" || { cat "$TMP/httpd.log"; fail "ms-httpd did not start"; }
active_before=$(tcpext TCPFastOpenActive)
for i in 1 2 3; do
  in_client curl -sS --fail --max-time 10 --tcp-fastopen -o "$TMP/got$i" "http://$SERVER_IP:8080/page.bin" || fail "curl fetch $i"
  cmp -s "$TMP/got$i" "$TMP/www/page.bin" || fail "fetch $i is not the file"
done
active=$(( $(tcpext TCPFastOpenActive) - active_before ))
((active == 2)) || fail "the kernel client's data in the SYN was acknowledged $active times, want 2 (after the cookie request)"
ok "curl --tcp-fastopen -> ms-httpd on UTCP: the request went in the SYN twice after the cookie request, and UTCP took it; 3 fetches byte-exact"

ms_bg ip netns exec "$CLIENT_NS" "$PY" "$PEER" server "$CLIENT_IP" 7001 --fast-open >"$TMP/kernel-echo.log" 2>&1
wait_for "$TMP/kernel-echo.log" "listening" || fail "kernel echo server did not start"
passive_before=$(tcpext TCPFastOpenPassive)
out=$(timeout 60 ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --connect "$CLIENT_IP:7001" --fast-open \
        --rounds 3 --bytes 1000) || fail "utcp-echo --fast-open against the kernel: $out"
[[ $(jq -r '.fast_open.cookie_requested' <<<"$out") == 1 && $(jq -r '.fast_open.data_acked' <<<"$out") == 2 ]] ||
  fail "UTCP client: want 1 cookie request then 2 SYNs whose data was acknowledged: $out"
passive=$(( $(tcpext TCPFastOpenPassive) - passive_before ))
((passive == 2)) || fail "the kernel server took data from $passive SYNs, want 2"
ok "utcp-echo --fast-open -> kernel server: 1 cookie request, then 2 SYNs with data the kernel took; 3 echoes byte-exact"

sleep 0.5
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
# A SYN (not a SYN,ACK) from FROM_IP with a Fast Open cookie and a payload.
syn_with_data() {
  grep -A1 -F "$1." "$TMP/syn.txt" | tr -d '\n' | sed 's/ IP /\nIP /g' | grep -F 'Flags [S' | grep -v 'Flags \[S\.' |
    grep 'tfo  cookie [0-9a-f]' | grep -Eq 'length [1-9][0-9]*(:|$)'
}
syn_with_data "$CLIENT_IP" || { grep -A1 8080 "$TMP/syn.txt"; fail "no SYN with a cookie and data from the kernel client"; }
syn_with_data "$SERVER_IP" || { cat "$TMP/syn.txt"; fail "no SYN with a cookie and data from UTCP"; }
ok "captured: SYNs with a Fast Open cookie and data both ways"
