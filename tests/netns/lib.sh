# Shared by the netns tests: test hosts, the daemon, and cleanup on every exit path.
# Source it with BIN_DIR set to the build tree's root; it defines:
#   ms_setup NAME     make the hosts (scripts/netns.sh) and a scratch directory $TMP
#   ms_daemon [ARGS]  start multistackd on the server veth, wait for its socket ($SOCK)
#   ms_bg CMD...      start a background command that cleanup will kill
#   in_server / in_client CMD...   run in a namespace; py_client CODE: python in the client
#   ok MSG / fail MSG
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MSD="$BIN_DIR/src/multistackd"
MSCTL="$BIN_DIR/tools/msctl"
ECHO_APP="$BIN_DIR/tools/ms-udp-echo"
PY=/usr/bin/python3
_pids=()
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
  eval "$(bash "$ROOT/scripts/netns.sh" up "$_name")"
}

ms_bg() {
  "$@" &
  _pids+=($!)
  LAST_PID=$!
}

# Waits for a file to contain a pattern, up to 10 s.
wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 100); do grep -q "$pattern" "$file" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

ms_daemon() {
  SOCK="$TMP/ms.sock"
  ms_bg ip netns exec "$SERVER_NS" "$MSD" --iface "$SERVER_IF" --socket "$SOCK" "$@" 2>"$TMP/daemon.log"
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
