#!/usr/bin/env bash
# Test hosts on one machine (docs/DESIGN.md §10): a server and a client network namespace joined
# by a veth pair, with addresses from the benchmarking range 198.18.0.0/15.
#
#   scripts/netns.sh up NAME [QUEUES]  creates them and prints shell assignments:
#                                SERVER_NS CLIENT_NS SERVER_IF CLIENT_IF SERVER_IP CLIENT_IP
#                                SERVER_MAC CLIENT_MAC
#   scripts/netns.sh up NAME QUEUES router   the same, with a router namespace between them:
#                                a bridge joining two veth pairs, whose egress queues are
#                                where a test puts a bottleneck (forwarded frames, unlike a
#                                sender's own, are not held back by the kernel's TCP Small
#                                Queues); also prints ROUTER_NS TO_SERVER_IF TO_CLIENT_IF
#   scripts/netns.sh down NAME   removes them (no error if they are gone)
#
# NAME: up to 10 letters or digits, unique per test run. QUEUES (default 1): rx and tx
# queues of each veth end; the sender's tx queue (a flow hash) is the receiver's rx queue.
# Needs root.
set -euo pipefail

usage() { sed -n '2,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

names() {
  local name=$1
  [[ "$name" =~ ^[A-Za-z0-9]{1,10}$ ]] || { echo "netns.sh: bad NAME '$name'" >&2; exit 2; }
  SERVER_NS="ms-$name-srv"
  CLIENT_NS="ms-$name-cli"
  SERVER_IF="ms$name-s"
  CLIENT_IF="ms$name-c"
  ROUTER_NS="ms-$name-rtr"
  TO_SERVER_IF="ms$name-rs"
  TO_CLIENT_IF="ms$name-rc"
  SERVER_IP=198.18.0.1
  CLIENT_IP=198.18.0.2
}

up() {
  names "$1"
  local queues=${2:-1}
  [[ "$queues" =~ ^[1-9][0-9]?$ ]] || { echo "netns.sh: bad QUEUES '$queues'" >&2; exit 2; }
  local q=""  # one queue: the kernel's default veth
  ((queues == 1)) || q="numrxqueues $queues numtxqueues $queues"
  ip netns add "$SERVER_NS"
  ip netns add "$CLIENT_NS"
  if [[ ${3:-} == router ]]; then
    routed_link "$q"
  else
    # shellcheck disable=SC2086  # $q is several words
    ip link add "$SERVER_IF" netns "$SERVER_NS" $q type veth peer name "$CLIENT_IF" netns "$CLIENT_NS" $q
  fi
  ip -n "$SERVER_NS" addr add "$SERVER_IP/24" dev "$SERVER_IF"
  ip -n "$CLIENT_NS" addr add "$CLIENT_IP/24" dev "$CLIENT_IF"
  for ns in "$SERVER_NS" "$CLIENT_NS"; do ip -n "$ns" link set lo up; done
  ip -n "$SERVER_NS" link set "$SERVER_IF" up
  ip -n "$CLIENT_NS" link set "$CLIENT_IF" up
  # Frames the client's kernel sends must carry full checksums: with offload on, veth
  # delivers only the pseudo-header sum, which a user-level stack would reject.
  ip netns exec "$CLIENT_NS" ethtool -K "$CLIENT_IF" tx off >/dev/null
  local smac cmac
  smac=$(ip -n "$SERVER_NS" -o link show "$SERVER_IF" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  cmac=$(ip -n "$CLIENT_NS" -o link show "$CLIENT_IF" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  [[ ${3:-} == router ]] &&
    printf 'ROUTER_NS=%s\nTO_SERVER_IF=%s\nTO_CLIENT_IF=%s\n' "$ROUTER_NS" "$TO_SERVER_IF" "$TO_CLIENT_IF"
  printf 'SERVER_NS=%s\nCLIENT_NS=%s\nSERVER_IF=%s\nCLIENT_IF=%s\nSERVER_IP=%s\nCLIENT_IP=%s\nSERVER_MAC=%s\nCLIENT_MAC=%s\n' \
    "$SERVER_NS" "$CLIENT_NS" "$SERVER_IF" "$CLIENT_IF" "$SERVER_IP" "$CLIENT_IP" "$smac" "$cmac"
}

# The router: the server's and the client's veth pairs end on a bridge in ROUTER_NS.
routed_link() {
  local q=$1
  ip netns add "$ROUTER_NS"
  # shellcheck disable=SC2086  # $q is several words
  ip link add "$SERVER_IF" netns "$SERVER_NS" $q type veth peer name "$TO_SERVER_IF" netns "$ROUTER_NS" $q
  # shellcheck disable=SC2086
  ip link add "$CLIENT_IF" netns "$CLIENT_NS" $q type veth peer name "$TO_CLIENT_IF" netns "$ROUTER_NS" $q
  ip -n "$ROUTER_NS" link add ms_bridge type bridge forward_delay 0 stp_state 0
  for port in "$TO_SERVER_IF" "$TO_CLIENT_IF"; do
    ip -n "$ROUTER_NS" link set "$port" master ms_bridge up
  done
  ip -n "$ROUTER_NS" link set ms_bridge up
}

down() {
  names "$1"
  ip netns del "$SERVER_NS" 2>/dev/null || true
  ip netns del "$CLIENT_NS" 2>/dev/null || true
  ip netns del "$ROUTER_NS" 2>/dev/null || true
}

(($# >= 2)) || usage
((EUID == 0)) || { echo "netns.sh: needs root" >&2; exit 1; }
case "$1" in
  up) (($# <= 4)) || usage; [[ ${4:-router} == router ]] || usage; up "$2" "${3:-1}" "${4:-}" ;;
  down) (($# == 2)) || usage; down "$2" ;;
  *) usage ;;
esac
