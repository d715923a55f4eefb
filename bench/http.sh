#!/usr/bin/env bash
# The paper's Figure 6: an HTTP server on UTCP against nginx on the kernel, side by side
# in one run. wrk fetches 1 to 32 KB files with Connection: close and with keep-alive
# from ms-httpd over UTCP (through multistackd), ms-httpd over kernel sockets, and nginx
# (one worker, access_log off, sendfile) with TSO on and off. Server side on core 1,
# wrk on core 0; reports requests/s, Gbit/s and server-side CPU per request, and
# requests/s with the server side capped to half a core. Writes bench/results/http.json,
# http.png (throughput) and http_cpu.png (CPU per request). Needs root.
#
# Usage: bench/http.sh [--seconds S] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/http.sh needs root (namespaces, XDP, cgroups)" >&2; exit 1; }

bash scripts/setup.sh nginx-light wrk python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-httpd
mkdir -p bench/results
/usr/bin/python3 bench/http/run.py --build build --out bench/results/http.json "$@"
