#!/usr/bin/env bash
# UTCP under loss: a kernel client sends BYTES through an echo server while
# ms-drop (a tc program on the client's veth) drops LOSS percent of the TCP packets the
# server sends, at 1, 3 and 5 %; once to utcp-echo through multistackd, once to a kernel
# echo server in the same namespace with the same congestion control (named: a host's
# default need not be CUBIC), offloads off on both veths. Checks that every
# transfer is byte-exact (SHA-256), that packets were really dropped, and that at 1 %
# UTCP's sender needed at most 2 RTOs per 1000 segments (RACK-TLP and SACK recovery do
# the rest); prints each time and the ratio. The speed target lives in bench/tcp.sh.
#
# Usage: BIN_DIR=build tcp_loss.sh   (BYTES=N to change the transfer, 20 MB by default)
source "$(dirname "$0")/lib.sh"
UTCP_ECHO="$BIN_DIR/tools/utcp-echo"
DROP="$BIN_DIR/tests/ms-drop"
PEER="$ROOT/tests/netns/tcp_peer.py"
BYTES=${BYTES:-20971520}
[[ -x "$DROP" ]] || fail "no $DROP: build the ms-drop target"
ms_setup "tl$$"
for side in server client; do
  "in_$side" ethtool -K "$([[ $side == server ]] && echo "$SERVER_IF" || echo "$CLIENT_IF")" tso off gso off gro off >/dev/null
done
ms_daemon
# The kernel's echo servers: CUBIC on 7100, BBR (the kernel's version 1) on 7101.
declare -A KERNEL_PORT=([cubic]=7100 [bbr]=7101)
for cc in "${!KERNEL_PORT[@]}"; do
  ms_bg ip netns exec "$SERVER_NS" "$PY" "$PEER" server "$SERVER_IP" "${KERNEL_PORT[$cc]}" --cc "$cc" \
    >"$TMP/kernel-echo-$cc.log" 2>&1
  wait_for "$TMP/kernel-echo-$cc.log" "listening" ||
    fail "the kernel echo server with $cc did not start: $(cat "$TMP/kernel-echo-$cc.log")"
done

# The congestion control is the application's choice; a name UTCP does not know is refused.
if out=$(in_server "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7000" --cc bogus 2>&1); then
  fail "utcp-echo accepted --cc bogus: $out"
fi
grep -q "no congestion control 'bogus' (known: bbr, cubic, newreno, scalable)" <<<"$out" || fail "unclear error: $out"
ok "an unknown congestion control is refused: $out"

# One transfer through SERVER_IP:PORT; prints the client's JSON.
transfer() { timeout 280 ip netns exec "$CLIENT_NS" "$PY" "$PEER" client "$SERVER_IP" "$1" --bytes "$BYTES"; }

# CUBIC at each rate, and BBR (paced, delivery-rate driven) at 3 %.
for run in 1:cubic 3:cubic 5:cubic 3:bbr; do
  loss=${run%%:*}
  cc=${run##*:}
  ms_bg ip netns exec "$SERVER_NS" "$UTCP_ECHO" --socket "$SOCK" --listen "$SERVER_IP:7000" --cc "$cc" >"$TMP/utcp-$loss.log" 2>&1
  utcp_pid=$LAST_PID
  wait_for "$TMP/utcp-$loss.log" "echoing" || { cat "$TMP/utcp-$loss.log"; fail "utcp-echo did not start"; }
  ms_bg ip netns exec "$CLIENT_NS" "$DROP" --dev "$CLIENT_IF" --loss "$loss" --seed "$loss" >"$TMP/drop-$loss.json" 2>"$TMP/drop-$loss.log"
  drop_pid=$LAST_PID
  wait_for "$TMP/drop-$loss.log" "dropping" || { cat "$TMP/drop-$loss.log"; fail "ms-drop did not attach"; }
  utcp=$(transfer 7000) || fail "$loss % loss: the transfer through UTCP failed: $utcp"
  kernel=$(transfer "${KERNEL_PORT[$cc]}") || fail "$loss % loss: the transfer through the kernel failed: $kernel"
  kill -TERM "$drop_pid" "$utcp_pid"
  wait "$drop_pid" || fail "ms-drop did not detach cleanly"
  wait "$utcp_pid" || fail "utcp-echo did not exit cleanly"
  dropped=$(jq .dropped "$TMP/drop-$loss.json")
  ((dropped > 0)) || fail "$loss % loss: ms-drop dropped nothing: $(cat "$TMP/drop-$loss.json")"
  tcp=$(tail -1 "$TMP/utcp-$loss.log" | jq -c .tcp)
  segments=$(jq .segments_out <<<"$tcp")
  rtos=$(jq .timeouts <<<"$tcp")
  if ((loss == 1)) && ((rtos * 1000 > 2 * segments)); then
    fail "$loss % loss: UTCP needed $rtos RTOs for $segments segments (at most 2 per 1000): $tcp"
  fi
  ok "$loss % loss, $cc on both ($dropped packets dropped): UTCP $(jq .seconds <<<"$utcp") s, kernel $(jq .seconds <<<"$kernel") s" \
     "(ratio $(jq -n "$(jq .seconds <<<"$utcp") / $(jq .seconds <<<"$kernel") * 100 | round / 100")); UTCP sender: $tcp"
done
echo "PASS"
