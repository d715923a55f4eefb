#!/usr/bin/env bash
# msctl sockets: every UTCP application publishes its listeners
# and connections; msctl shows each one's state, addresses, congestion control and
# options, fresh (it asks the application to publish), and only to the port's owner or
# root. Three applications at once: root's with NewReno and Fast Open, uid 65534's with
# CUBIC, and root's with BBR (its phase, bandwidth, min RTT and pacing rate shown), each
# holding a connection from a kernel client.
#
# Usage: BIN_DIR=build sockets.sh
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
NOBODY=(setpriv --reuid 65534 --regid 65534 --clear-groups)
ms_setup "so$$"
ms_daemon --group nogroup

ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7000" --cc newreno --fast-open >"$TMP/a.log" 2>&1
wait_for "$TMP/a.log" "echoing" || { cat "$TMP/a.log"; fail "root's utcp-echo did not start"; }
ms_bg ip netns exec "$SERVER_NS" "${NOBODY[@]}" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7001" >"$TMP/b.log" 2>&1
wait_for "$TMP/b.log" "echoing" || { cat "$TMP/b.log"; fail "uid 65534's utcp-echo did not start"; }
ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7002" --cc bbr >"$TMP/c.log" 2>&1
wait_for "$TMP/c.log" "echoing" || { cat "$TMP/c.log"; fail "the BBR utcp-echo did not start"; }

# A kernel client holds one connection to each until its input closes.
coproc CLIENT { in_client "$PY" -c "
import socket, sys
conns = [socket.create_connection(('$SERVER_IP', port)) for port in (7000, 7001, 7002)]
for c, size in zip(conns, (50000, 50000, 200000)):
    c.sendall(b'x' * size)
    got = 0
    while got < size:
        got += len(c.recv(65536))
print('connected', flush=True)
sys.stdin.read()
"; }
read -r -t 10 line <&"${CLIENT[0]}" && [[ $line == connected ]] || fail "the kernel client did not connect and echo"

port_of() { in_server "$MSCTL" --socket "$SOCK" claims --json | jq -r ".[] | select(.claim == \"tcp $SERVER_IP:$1\") | .port"; }
A=$(port_of 7000)
B=$(port_of 7001)
out=$(in_server "$MSCTL" --socket "$SOCK" sockets --json) || fail "msctl sockets: $out"
echo "$out" >"$TMP/root.json"
sockets_of() { jq -c --argjson p "$1" '.[] | select(.port == $p) | .sockets' "$TMP/root.json"; }
jq -e --argjson a "$A" --argjson b "$B" '[.[] | select(.fresh) | .port] | contains([$a, $b])' "$TMP/root.json" >/dev/null ||
  { cat "$TMP/root.json"; fail "root does not see fresh snapshots of both ports"; }
sockets_of "$A" | jq -e --arg peer "$CLIENT_IP" '
  any(.[]; .state == "LISTEN" and .local == "'"$SERVER_IP"':7000" and (.options | index("tfo")) and .congestion == "newreno") and
  any(.[]; .state == "ESTABLISHED" and (.peer | startswith($peer + ":")) and .congestion == "newreno" and
           (.options | contains(["sack", "ts", "wscale", "tfo"])) and .cwnd > 0 and .srtt_us >= 0 and .bytes_in == 50000)' >/dev/null ||
  { sockets_of "$A"; fail "root's application: want its listener with Fast Open and an established NewReno connection"; }
sockets_of "$B" | jq -e 'any(.[]; .state == "ESTABLISHED" and .congestion == "cubic" and .bytes_out == 50000)' >/dev/null ||
  { sockets_of "$B"; fail "uid 65534's application: want an established CUBIC connection"; }
ok "root sees both applications' sockets: NewReno with Fast Open on one, CUBIC on the other, with SACK, timestamps and window scale"

C=$(port_of 7002)
sockets_of "$C" | jq -e 'any(.[]; .state == "ESTABLISHED" and .congestion == "bbr" and .phase != "" and .bandwidth > 0 and
                               .min_rtt_us > 0 and .pacing_rate > 0 and .bytes_out == 200000)' >/dev/null ||
  { sockets_of "$C"; fail "the BBR application: want its connection with a phase, a bandwidth, a min RTT and a pacing rate"; }
ok "BBR's model is shown: $(sockets_of "$C" | jq -c '.[] | select(.state == "ESTABLISHED") | {phase, bandwidth, min_rtt_us, pacing_rate}')"

text=$(in_server "$MSCTL" --socket "$SOCK" sockets) || fail "msctl sockets (text): $text"
grep -q "ESTABLISHED .*newreno" <<<"$text" && grep -q "ESTABLISHED .*cubic" <<<"$text" &&
  grep -q "ESTABLISHED .*bbr:[a-z_]* bw=.*Mbit/s min_rtt=.*ms pace=" <<<"$text" ||
  { echo "$text"; fail "the table does not show both connections"; }
ok "msctl sockets prints one line per socket"

mine=$(in_server "${NOBODY[@]}" "$MSCTL" --socket "$SOCK" sockets --json) || fail "msctl sockets as uid 65534: $mine"
[[ $(jq -c '[.[].port]' <<<"$mine") == "[$B]" ]] || { echo "$mine"; fail "uid 65534 should see its own port only"; }
if denied=$(in_server "${NOBODY[@]}" "$MSCTL" --socket "$SOCK" sockets --port "$A" 2>&1); then
  fail "uid 65534 read root's sockets: $denied"
fi
grep -qi "permission" <<<"$denied" || fail "uid 65534 asking for root's port: want a permission error, got: $denied"
ok "uid 65534 sees its own sockets only; asking for root's port is refused"

exec {CLIENT[1]}>&-  # the client closes both connections
sleep 0.5
after=$(in_server "$MSCTL" --socket "$SOCK" sockets --port "$A" --json) || fail "msctl sockets after close: $after"
jq -e '.[0].fresh and ([.[0].sockets[] | select(.state == "ESTABLISHED")] | length == 0)' <<<"$after" >/dev/null ||
  { echo "$after"; fail "the closed connection is still shown"; }
ok "a fresh snapshot after the client closed shows no established connection"
