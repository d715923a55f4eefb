#!/usr/bin/env bash
# One bulk TCP flow in each direction, and connection set-up and teardown rates (one at
# a time, and 100 in parallel), with the server end on UTCP through multistackd and on
# the Linux kernel, in the same run on the same veth; the client end is the kernel's.
# Reports goodput, CPU per byte (the server side's processes, and the whole system),
# and connections per second. Writes bench/results/tcp.json and tcp.png. Needs root.
#
#
# `bench/tcp.sh loss` runs the loss table instead (bench/tcp/loss.py): an echo server on
# UTCP and on the kernel while a tc program drops 1, 3 and 5 % of the server's packets;
# writes bench/results/tcp_loss.json.
#
# `bench/tcp.sh bottleneck` runs BBR against CUBIC through a router's 100 Mbit/s, 20 ms
# bottleneck with a deep buffer (bench/tcp/bottleneck.py, over tests/netns/bottleneck.sh):
# UTCP's BBR and CUBIC, and the kernel's CUBIC and BBR, each flow's share of the rate and
# RTT inflation; writes bench/results/tcp_bottleneck.json.
#
# `bench/tcp.sh scale` runs connections at scale (bench/tcp/scale.py): memory per idle
# connection with 100k connections on a UTCP and on a kernel server, measured the same
# way, and 1M connections churned through UTCP with its RSS sampled; writes
# bench/results/tcp_scale.json.
#
# Usage: bench/tcp.sh [--bytes N] [--connections N] [--repeat N]
#        bench/tcp.sh loss [--bytes N] [--repeat N] [--loss 1,3,5]
#        bench/tcp.sh bottleneck [--bytes N] [--repeat N]
#        bench/tcp.sh scale [--connections N] [--churn N]
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "bench/tcp.sh needs root (namespaces, XDP)" >&2; exit 1; }

bash scripts/setup.sh python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target multistackd ms-tcp-bench utcp-echo ms-drop
mkdir -p bench/results
if [[ "${1:-}" == scale ]]; then
  shift
  exec /usr/bin/python3 bench/tcp/scale.py --build build --out bench/results/tcp_scale.json "$@"
fi
if [[ "${1:-}" == bottleneck ]]; then
  shift
  exec /usr/bin/python3 bench/tcp/bottleneck.py --build build --out bench/results/tcp_bottleneck.json "$@"
fi
if [[ "${1:-}" == loss ]]; then
  shift
  exec /usr/bin/python3 bench/tcp/loss.py --build build --out bench/results/tcp_loss.json "$@"
fi
/usr/bin/python3 bench/tcp/run.py --build build --out bench/results/tcp.json "$@"
