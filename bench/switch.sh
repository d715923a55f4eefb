#!/usr/bin/env bash
# Figure 4 of the MultiStack paper, in process: switch throughput against frame size and
# against active ports, for 1 and 2 workers, with DPDK testpmd and a plain memcpy loop
# measured in the same run. Writes bench/results/switch.json, switch_size.png and
# switch_ports.png, and the micro-benchmarks checksum.json and registry.json (a claim's
# cost against the claims already held, beside the workers' lookup).
#
# Usage: bench/switch.sh [--quick] [--seconds S]
#        bench/switch.sh --ratios [--rounds R] [--seconds S]
#   --ratios measures only the summary's ratios (2 workers / 1 worker, 254 ports / 1 port without
#   and with huge pages on the port regions), rounds alternating, into switch_ratios.json.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh dpdk-dev python3-matplotlib
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target ms-switch-bench ms-checksum-bench ms-registry-bench

mkdir -p bench/results
if [[ " $* " == *" --ratios "* ]]; then
  /usr/bin/python3 bench/switch/sweep.py --bench build/bench/ms-switch-bench --out bench/results/switch_ratios.json "$@"
  echo "wrote bench/results/switch_ratios.json"
  exit 0
fi
/usr/bin/python3 bench/switch/sweep.py --bench build/bench/ms-switch-bench --out bench/results/switch.json "$@"
build/bench/ms-checksum-bench --benchmark_min_time=0.2 --benchmark_format=json \
    --benchmark_out=bench/results/checksum.json --benchmark_out_format=json >/dev/null
build/bench/ms-registry-bench --benchmark_min_time=0.2 --benchmark_format=json \
    --benchmark_out=bench/results/registry.json --benchmark_out_format=json >/dev/null
echo "wrote bench/results/switch.json, switch_size.png, switch_ports.png, checksum.json, registry.json"
