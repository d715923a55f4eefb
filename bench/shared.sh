#!/usr/bin/env bash
# Shared claims (docs/DESIGN.md §4.2): several processes serving one TCP port over UTCP,
# multistackd steering each new connection to one of them, side by side in one run.
# wrk fetches 1 KB with Connection: close and with keep-alive from nginx with 2 workers
# under the preload (UTCP) and the same nginx configuration on the kernel, nginx with 1
# worker on both (reference), and ms-httpd --workers 2 and --workers 1 on UTCP. Reports
# requests/s, server CPU per request and each worker's share of the requests (largest over
# mean), with the server side on core 1 only and again allowed on cores 0-1 (wrk always on
# core 0; bench/shared/run.py explains the accounting). Writes bench/results/shared.json.
# Needs root.
#
# Usage: bench/shared.sh [--seconds S] [--connections N] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/shared.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh nginx-light wrk
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-httpd multistack-preload
mkdir -p bench/results
/usr/bin/python3 bench/shared/run.py --build build --out bench/results/shared.json "$@"
