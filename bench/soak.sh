#!/usr/bin/env bash
# Memory over a long mixed load (issue 26 §2b): nginx under the preload, ms-httpd and
# utcp-echo on the event API, one multistackd; wrk keep-alive and close against both
# servers and 20 MB echoes in rounds, RSS sampled after each. Writes
# bench/results/soak.json; exits 1 if a process's RSS grew after the warm-up (the first
# third) or a request failed. Needs root.
#
# Usage: bench/soak.sh [--minutes M (30)] [--phase-seconds S (10)]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/soak.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh nginx-light wrk
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-httpd utcp-echo multistack-preload
mkdir -p bench/results
/usr/bin/python3 bench/soak/run.py --build build --out bench/results/soak.json "$@"
