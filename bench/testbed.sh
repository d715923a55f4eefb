#!/usr/bin/env bash
# Shows that the NIC-faithful test bed, which every benchmark uses by default, does what
# it claims: a perf profile of the server's core holds none of the client's TCP receive
# there, and a large share of it on plain veths (bench/testbed/check.py). Writes
# bench/results/testbed.json. Needs root.
#
# Usage: bench/testbed.sh [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/testbed.sh needs root (namespaces, perf)" >&2; exit 1; }
bash scripts/setup.sh linux-perf
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target ms-tcp-bench
mkdir -p bench/results
exec /usr/bin/python3 bench/testbed/check.py --build build --out bench/results/testbed.json "$@"
