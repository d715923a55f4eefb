#!/usr/bin/env bash
# The other paths a program moves a socket's bytes by, under the preload
# (libmultistack-preload.so), with multistackd on the server's interface
# (src/preload/io_paths.cpp):
#   - a C-style program on stdio streams (fdopen, fprintf/fgets, fwrite/fread), with
#     dprintf and sendmmsg/recvmmsg, as a UTCP server against a kernel client and as a UTCP client
#     against a kernel server: byte-exact; splice() and tee() on the UTCP socket fail at
#     once with EINVAL, fileno() names the socket, and an option UTCP does not have fails
#     with ENOPROTOOPT and one log line;
#   - an unbound UDP socket's first sendmmsg places it on UTCP; recvmmsg takes the echo;
#   - MULTISTACK_EXCLUDE naming the program: its sockets stay with the kernel (no claim),
#     and it runs as without the library.
# Usage: BIN_DIR=build io_paths.sh
source "$(dirname "$0")/lib.sh"
PRELOAD="$(cd "$BIN_DIR" && pwd)/src/libmultistack-preload.so"
PEER="$BIN_DIR/tests/ms-io-paths-peer"
[[ -f $PRELOAD ]] || fail "no $PRELOAD"
[[ -x $PEER ]] || fail "no $PEER"
ms_setup "io$$"
ms_daemon

# claimed PORT: whether multistackd holds a claim on the server's PORT.
# (The list is read whole first: grep -q leaving early would fail msctl under pipefail.)
claimed() {
  local claims
  claims=$(in_server "$MSCTL" --socket "$SOCK" claims) || fail "msctl claims: $claims"
  grep -q "tcp $SERVER_IP:$1\b" <<<"$claims"
}

# --- a UTCP server on stdio, a kernel client -------------------------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_REQUIRE=1 \
  timeout 60 "$PEER" server "$SERVER_IP" 7000 --on-utcp >"$TMP/server.log" 2>&1
wait_for "$TMP/server.log" listening || fail "the stdio server did not start: $(cat "$TMP/server.log")"
claimed 7000 || fail "the stdio server's listener is not on UTCP"
out=$(in_client timeout 60 "$PEER" client "$SERVER_IP" 7000 2>&1) || fail "a kernel client of the UTCP stdio server: $out; server: $(cat "$TMP/server.log")"
wait "$LAST_PID" || fail "the UTCP stdio server: $(cat "$TMP/server.log")"
# IPPROTO_TCP is 6 and TCP_REPAIR 19 in Linux's ABI (netinet/in.h, linux/tcp.h).
grep -q "setsockopt (level 6, option 19) on the UTCP socket [0-9]* is not supported: ENOPROTOOPT" "$TMP/server.log" ||
  fail "no log line for the option UTCP does not have: $(cat "$TMP/server.log")"
ok "a UTCP server on stdio streams: $(grep '^ok' "$TMP/server.log" | sed 's/^ok - //'); its kernel client: ${out#ok - }"

# --- a UTCP client on stdio, a kernel server ---------------------------------------------------
ms_bg ip netns exec "$CLIENT_NS" timeout 60 "$PEER" server "$CLIENT_IP" 7100 >"$TMP/kernel-server.log" 2>&1
wait_for "$TMP/kernel-server.log" listening || fail "the kernel stdio server did not start: $(cat "$TMP/kernel-server.log")"
out=$(in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 MULTISTACK_REQUIRE=1 \
  timeout 60 "$PEER" client "$CLIENT_IP" 7100 --on-utcp 2>&1) || fail "the UTCP stdio client: $out"
grep -q "connecting to $CLIENT_IP:7100 over UTCP" <<<"$out" || fail "the stdio client's connection is not on UTCP: $out"
grep -q "fdopen on the UTCP socket" <<<"$out" || fail "the library did not log its stdio stream: $out"
wait "$LAST_PID" || fail "the kernel stdio server: $(cat "$TMP/kernel-server.log")"
ok "a UTCP client on stdio streams: $(grep '^ok' <<<"$out" | sed 's/^ok - //')"

# --- UDP: sendmmsg from an unbound socket places it on UTCP --------------------------------------
kernel_udp_echo 7150 "$TMP/udp-echo.log"
out=$(in_server env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 MULTISTACK_REQUIRE=1 \
  timeout 60 "$PEER" udp-client "$CLIENT_IP" 7150 2>&1) || fail "UDP by sendmmsg and recvmmsg: $out"
grep -q "UDP on .* over UTCP" <<<"$out" || fail "the unbound UDP socket's sendmmsg did not place it on UTCP: $out"
ok "UDP on UTCP: $(grep '^ok' <<<"$out" | sed 's/^ok - //')"

# --- MULTISTACK_EXCLUDE: the named program stays with the kernel ---------------------------------
ms_bg ip netns exec "$SERVER_NS" env LD_PRELOAD="$PRELOAD" MULTISTACK_SOCKET="$SOCK" MULTISTACK_LOG=2 \
  MULTISTACK_REQUIRE=1 MULTISTACK_EXCLUDE="some-other,ms-io-paths-peer" timeout 60 "$PEER" server "$SERVER_IP" 7200 >"$TMP/excluded.log" 2>&1
wait_for "$TMP/excluded.log" listening || fail "the excluded server did not start: $(cat "$TMP/excluded.log")"
claimed 7200 && fail "a program named in MULTISTACK_EXCLUDE claimed its port"
out=$(in_client timeout 60 "$PEER" client "$SERVER_IP" 7200 2>&1) || fail "a client of the excluded server: $out"
wait "$LAST_PID" || fail "the excluded server: $(cat "$TMP/excluded.log")"
grep -q "is in MULTISTACK_EXCLUDE: sockets stay with the kernel" "$TMP/excluded.log" ||
  fail "the library did not say why the program stays with the kernel: $(cat "$TMP/excluded.log")"
ok "MULTISTACK_EXCLUDE naming the program: no claim, served by the kernel, and one log line says so"
