# Shared by the netns tests: test hosts, the daemon, and cleanup on every exit path.
# Source it with BIN_DIR set to the build tree's root; it defines:
#   ms_setup NAME [QUEUES [router]]  make the hosts (scripts/netns.sh; QUEUES per veth end;
#                     router: a bridge namespace between them) and a scratch directory $TMP
#   ms_daemon [ARGS]  start multistackd on the server veth, wait for its socket ($SOCK)
#   ms_bg CMD...      start a background command that cleanup will kill
#   nginx_conf ROOT   nginx's configuration (master, two workers) for ROOT on $SERVER_IP:8080
#   in_server / in_client CMD...   run in a namespace; py_client CODE: python in the client
#   ok MSG / fail MSG
#   interop_start / interop_sizes   Linux interop: UTCP's echo against the kernel's (below)
#   wait_for_ipv6 NS...  until no address of those namespaces is tentative (DAD done)
#   ipv6_hosts           the hosts get SERVER6 and CLIENT6 too, waited for
#   SOCAT_BLOCK       socat's block size for an echo through PIPE or a program (below)
#   kernel_udp_echo PORT LOG   a kernel UDP echo on the client's PORT
#   router_bottleneck RATE LIMIT   the router's tbf bottleneck, with a LIMIT-byte queue each way
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MSD="$BIN_DIR/src/multistackd"
MSCTL="$BIN_DIR/tools/msctl"
ECHO_APP="$BIN_DIR/tools/ms-udp-echo"
PY=/usr/bin/python3
_pids=()
# socat moves both directions in one thread with blocking writes, and a pipe promises one
# free page when poll says it is writable. With socat's default 8192-byte blocks, a write
# into its own PIPE (or a program's) can then block for good while the socket's send side
# is full, and socat deadlocks itself, on the kernel's stack too (a 16 KB sndbuf and a slow
# reader show it there). Blocks of one page never block after poll.
SOCAT_BLOCK=-b4096
_name=""

if ((EUID != 0)); then
  echo "SKIPPED: netns tests need root (network namespaces and XDP)"
  exit 77
fi

ms_cleanup() {
  local pid
  for pid in "${_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "$_name" ]] && bash "$ROOT/scripts/netns.sh" down "$_name"
  [[ -n "${TMP:-}" ]] && rm -rf "$TMP"
  return 0
}
trap ms_cleanup EXIT
trap 'exit 1' INT TERM  # so that a timeout still runs the cleanup

fail() {
  echo "FAIL: $*"
  [[ -f "${TMP:-}/daemon.log" ]] && sed 's/^/  multistackd: /' "$TMP/daemon.log"
  exit 1
}
ok() { echo "ok - $*"; }
in_server() { ip netns exec "$SERVER_NS" "$@"; }
in_client() { ip netns exec "$CLIENT_NS" "$@"; }
py_client() { in_client "$PY" -c "$1"; }
py_server() { in_server "$PY" -c "$1"; }

ms_setup() {
  _name=$1
  TMP=$(mktemp -d)
  chmod 755 "$TMP"
  eval "$(bash "$ROOT/scripts/netns.sh" up "$_name" "${2:-1}" ${3:+"$3"})"
}

# nginx_conf ROOT: $TMP/nginx.conf for nginx in its default process model (a master and
# two workers) serving ROOT on $SERVER_IP:8080, logging to $TMP/nginx_error.log.
nginx_conf() {
  cat >"$TMP/nginx.conf" <<EOF
user root;
worker_processes 2;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx_error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server { listen $SERVER_IP:8080; root $1; }
}
EOF
}

ms_bg() {
  "$@" &
  _pids+=($!)
  LAST_PID=$!
}

# Waits for a file to contain a pattern, up to 10 s.
# kernel_udp_echo PORT LOG: a kernel UDP echo on $CLIENT_IP:PORT in the background
# (cleanup kills it), started and waited for; it logs to LOG.
kernel_udp_echo() {
  local port=$1 log=$2
  ms_bg ip netns exec "$CLIENT_NS" "$PY" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$CLIENT_IP', $port))
print('echoing', flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)" >"$log" 2>&1
  wait_for "$log" echoing || fail "the kernel UDP echo on port $port did not start: $(cat "$log")"
}

wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 100); do grep -q "$pattern" "$file" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# ipv6_hosts: gives the hosts SERVER6 (2001:2::1) and CLIENT6 (2001:2::2) beside their
# IPv4 addresses, and waits until neither is tentative.
SERVER6=2001:2::1
CLIENT6=2001:2::2
ipv6_hosts() {
  ip -n "$SERVER_NS" addr add "$SERVER6/64" dev "$SERVER_IF" nodad
  ip -n "$CLIENT_NS" addr add "$CLIENT6/64" dev "$CLIENT_IF" nodad
  wait_for_ipv6 "$SERVER_NS" "$CLIENT_NS" || fail "IPv6 addresses still tentative after 5 s"
}

# Duplicate address detection holds link-local addresses (and with them neighbour
# discovery) for about a second after a link comes up.
wait_for_ipv6() {
  local ns tentative
  for _ in $(seq 50); do
    tentative=""
    for ns in "$@"; do tentative+=$(ip -n "$ns" -6 addr show tentative); done
    [[ -z "$tentative" ]] && return 0
    sleep 0.1
  done
  return 1
}

# router_bottleneck RATE LIMIT: after `ms_setup NAME 1 router`, the router forwards RATE (tc's
# units, e.g. 100mbit) each way, with a tail-drop queue of LIMIT bytes: tbf on both of its
# egress ports. The burst is two frames, so that the rate holds at the microsecond scale a
# pacing sender measures. Offloads go off on the hosts, so that the queues hold frames.
router_bottleneck() {
  local rate=$1 limit=$2 port
  in_server ethtool -K "$SERVER_IF" tso off gso off gro off >/dev/null
  in_client ethtool -K "$CLIENT_IF" tso off gso off gro off >/dev/null
  for port in "$TO_SERVER_IF" "$TO_CLIENT_IF"; do
    ip netns exec "$ROUTER_NS" tc qdisc replace dev "$port" root tbf rate "$rate" burst 3kb limit "$limit"
  done
}

# Starts multistackd on the server's interface with ARGS; MSD_PREFIX (an array, e.g.
# prlimit --nofile=N:N) runs before it.
ms_daemon() {
  SOCK="$TMP/ms.sock"
  ms_bg ip netns exec "$SERVER_NS" ${MSD_PREFIX[@]+"${MSD_PREFIX[@]}"} "$MSD" --iface "$SERVER_IF" --socket "$SOCK" "$@" \
    2>"$TMP/daemon.log"
  DAEMON_PID=$LAST_PID
  wait_for "$TMP/daemon.log" "listening on" || fail "multistackd did not start"
}

# Starts ms-udp-echo on ADDR:PORT and waits until it has its claim.
ms_echo() {
  local listen=$1
  shift
  ms_bg ip netns exec "$SERVER_NS" "$@" "$ECHO_APP" --socket "$SOCK" --listen "$listen" >"$TMP/echo.log" 2>&1
  ECHO_PID=$LAST_PID
  wait_for "$TMP/echo.log" "echoes" || { cat "$TMP/echo.log"; fail "ms-udp-echo did not claim $listen"; }
}

# Linux interop (tcp_interop.sh, ipv6.sh). interop_start UTCP_ADDR KERNEL_ADDR starts
# utcp-echo on UTCP_ADDR:7000 in the server namespace (UTCP_PID) and the kernel's echo
# servers of tcp_peer.py on KERNEL_ADDR:7001 and :7002 (which resets after 200 KB) in
# the client namespace. Addresses are bare (IPv6 without brackets). Then:
#   kernel_client ARGS...   the kernel's client against the UTCP server; prints its JSON
#   utcp_client ARGS...     utcp-echo as a client (give --connect); prints its JSON
#   interop_sizes LABEL     1 KB, 1 MB and 100 MB each way, checked by SHA-256; leaves the
#                           last UTCP client's JSON in $out
#   interop_closes LABEL    a half close each way, then a reset each way: the UTCP client
#                           reports it, the UTCP server goes on serving
interop_start() {
  INTEROP_UTCP=$1
  INTEROP_KERNEL=$2
  local peer="$ROOT/tests/netns/tcp_peer.py"
  ms_bg ip netns exec "$SERVER_NS" "$BIN_DIR/tools/utcp-echo" --socket "$SOCK" --listen "$(endpoint "$1" 7000)" >"$TMP/utcp.log" 2>&1
  UTCP_PID=$LAST_PID
  wait_for "$TMP/utcp.log" "echoing" || { cat "$TMP/utcp.log"; fail "utcp-echo did not start on $1"; }
  ms_bg ip netns exec "$CLIENT_NS" "$PY" "$peer" server "$2" 7001 >"$TMP/kernel-echo.log" 2>&1
  wait_for "$TMP/kernel-echo.log" "listening" || fail "kernel echo server did not start"
  ms_bg ip netns exec "$CLIENT_NS" "$PY" "$peer" server "$2" 7002 --abort-after 200000 >"$TMP/kernel-rst.log" 2>&1
  wait_for "$TMP/kernel-rst.log" "listening" || fail "resetting kernel server did not start"
}
# endpoint ADDR PORT: ADDR:PORT, with brackets for IPv6.
endpoint() { if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }
kernel_client() { timeout 120 ip netns exec "$CLIENT_NS" "$PY" "$ROOT/tests/netns/tcp_peer.py" client "$INTEROP_UTCP" 7000 "$@"; }
utcp_client() { timeout 120 ip netns exec "$SERVER_NS" "$BIN_DIR/tools/utcp-echo" --socket "$SOCK" "$@"; }
interop_sizes() {
  local label=$1 bytes
  for bytes in 1024 1048576 104857600; do
    out=$(kernel_client --bytes "$bytes") || fail "$label kernel client -> UTCP server, $bytes bytes: $out"
    ok "$label kernel client -> UTCP server: $bytes bytes echoed, SHA-256 equal ($(jq -r .seconds <<<"$out") s)"
    out=$(utcp_client --connect "$(endpoint "$INTEROP_KERNEL" 7001)" --bytes "$bytes") ||
      fail "$label UTCP client -> kernel server, $bytes bytes: $out"
    [[ $(jq -r .sent_sha256 <<<"$out") == $(jq -r .received_sha256 <<<"$out") ]] || fail "hashes differ: $out"
    ok "$label UTCP client -> kernel server: $bytes bytes echoed, SHA-256 equal ($(jq -r .seconds <<<"$out") s)"
  done
}
interop_closes() {
  local label=$1
  out=$(kernel_client --bytes 1048576 --half-close) || fail "$label kernel half close: $out"
  ok "$label: the kernel client half-closes; the UTCP server in CLOSE_WAIT still echoes all 1 MB"
  out=$(utcp_client --connect "$(endpoint "$INTEROP_KERNEL" 7001)" --bytes 1048576 --half-close) || fail "$label UTCP half close: $out"
  ok "$label: the UTCP client half-closes; it receives the whole echo in FIN_WAIT_2"
  kernel_client --bytes 10485760 --abort-after 1048576 >/dev/null 2>&1 || true
  out=$(kernel_client --bytes 1048576) || fail "$label: the UTCP server stopped serving after a reset: $out"
  ok "$label: the kernel client resets mid-transfer; the UTCP server goes on serving"
  if out=$(utcp_client --connect "$(endpoint "$INTEROP_KERNEL" 7002)" --bytes 10485760); then
    fail "$label: the UTCP client did not notice the kernel server's reset: $out"
  fi
  [[ $(jq -r '.failures[0].error' <<<"$out") == "connection reset" ]] || fail "$label: expected a reset, got: $out"
  ok "$label: the kernel server resets mid-transfer; the UTCP client reports 'connection reset'"
}
