#!/usr/bin/env bash
# Unmodified programs on UTCP through libmultistack-preload.so against the same programs
# on the kernel, side by side in one run: nginx (Figure 6: server core per request at
# 1 KB and 32 KB with Connection: close, 1 KB keep-alive; ms-httpd on the event API for
# the preload's own cost), redis-server (redis-benchmark GET and SET: requests per
# server-core second), and one socket call on a ready socket (ms-socket-calls: epoll_wait,
# 64-byte recv and send on the kernel, under the preload, on the event API). Server side
# on core 1, clients on core 0, NIC-faithful test bed.
# Writes bench/results/preload.json and preload.png. Needs root.
#
# Usage: bench/preload.sh [--seconds S] [--connections N] [--redis-requests N] [--calls N]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/preload.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh nginx-light wrk redis-server redis-tools python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-httpd multistack-preload ms-socket-calls ms-tcp-bench
mkdir -p bench/results
/usr/bin/python3 bench/preload/run.py --build build --out bench/results/preload.json "$@"
