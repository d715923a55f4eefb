#!/usr/bin/env bash
# multistackd on a real interface (a veth between two test namespaces), measured side by
# side with its peers in one run:
#   - rx and tx of 60-byte UDP frames through multistackd (ms-pktgen on a port) against
#     a raw AF_XDP program with no switch (ms-xdp-raw), with CPU-us per frame;
#   - nginx (1 worker, access_log off) on the kernel stack with wrk, 1 KB, keep-alive and
#     Connection: close, with the switch detached and then attached;
#   - the idle cost of the daemon and one attached, idle application over 10 s.
# Writes bench/results/nic.json and nic.png. Needs root.
#
# Usage: bench/nic.sh [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/nic.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh nginx-light wrk python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-pktgen ms-udp-echo ms-xdp-raw
mkdir -p bench/results
/usr/bin/python3 bench/nic/run.py --build build --out bench/results/nic.json "$@"
