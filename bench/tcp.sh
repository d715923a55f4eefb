#!/usr/bin/env bash
# One bulk TCP flow in each direction, and connection set-up and teardown rates (one at
# a time, and 100 in parallel), with the server end on UTCP through multistackd and on
# the Linux kernel, in the same run on the same veth; the client end is the kernel's.
# Reports goodput, CPU per byte (the server side's processes, and the whole system),
# and connections per second. Writes bench/results/tcp.json and tcp.png. Needs root.
#
# Usage: bench/tcp.sh [--bytes N] [--connections N] [--repeat N]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/tcp.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-tcp-bench
mkdir -p bench/results
/usr/bin/python3 bench/tcp/run.py --build build --out bench/results/tcp.json "$@"
