#!/usr/bin/env bash
# Runs after every netns test (a ctest fixture cleanup): fails if a test left anything
# behind: a test namespace (scripts/netns.sh names them ms-NAME-srv, ms-NAME-cli and
# ms-NAME-rtr), a test veth in the root namespace, an XDP program on a root-namespace
# interface, or a process of the tests (one that names the build tree, the test scripts,
# or an address of the tests' ranges 198.18.0.0/15 and 2001:2::/48). It names each leftover, then
# removes it, so that the next run starts clean. With --before (a ctest fixture setup,
# before the netns tests) it removes what an earlier, interrupted run left, names it, and
# passes: only what this run leaves fails the check after it.
#
# Usage: BIN_DIR=build leftovers.sh [--before]
set -uo pipefail
before=0
[[ "${1:-}" == --before ]] && before=1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ((EUID != 0)); then
  echo "SKIPPED: the leftover check needs root (the netns tests did not run either)"
  exit 77
fi
found=0
leftover() {
  echo "LEFTOVER$( ((before)) && echo " of an earlier run"): $*"
  found=1
}

# Processes: everything but this script, its children and the test runner itself.
mine="$$ $PPID"
while read -r pid args; do
  [[ " $mine " == *" $pid "* ]] && continue
  case "$args" in
    *ctest*|*leftovers.sh*) continue ;;
  esac
  if [[ "$args" == *"$BIN_DIR/"* || "$args" == *"$ROOT/tests/"* || "$args" =~ 198\.1[89]\.|2001:2: ]]; then
    leftover "process $pid: $args"
    kill -KILL "$pid" 2>/dev/null
  fi
done < <(ps -eo pid=,args=)

for ns in $(ip netns list | awk '{print $1}' | grep -E '^ms-[A-Za-z0-9]+-(srv|cli|rtr)$'); do
  leftover "network namespace $ns"
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL
  ip netns del "$ns"
done

while read -r name; do
  leftover "interface $name"
  ip link del "$name" 2>/dev/null
done < <(ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E '^ms[A-Za-z0-9]+-[sc]$')

while read -r name; do
  leftover "an XDP program on $name"
done < <(ip -o link show | grep -E 'prog/xdp|xdpgeneric|xdpdrv' | awk -F': ' '{sub(/@.*/, "", $2); print $2}')

if ((found && before)); then
  echo "NOTE: an earlier, interrupted run left the above behind (now removed)"
  exit 0
fi
if ((found)); then
  echo "FAIL: the netns tests left the above behind (now removed)"
  exit 1
fi
echo "ok - no process, namespace, test interface or XDP program outlived the netns tests"
