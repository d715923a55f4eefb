#!/usr/bin/env bash
# Installs, idempotently, the Debian packages that MultiStack needs to build and test
# (with the unmodified programs the preload test runs).
# Quiet when everything is present. Benchmark-only peers (dpdk-dev, nginx, wrk, plotting)
# are installed by the benchmark scripts through the same helper.
#
# Usage: scripts/setup.sh [extra-package ...]
set -euo pipefail

BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  clang-16 libclang-rt-16-dev clang-format-16
  libxdp-dev libbpf-dev libpcap-dev libmnl-dev libsodium-dev libsystemd-dev
  iproute2 ethtool iputils-ping tcpdump util-linux jq curl wrk
)
# The unmodified programs that the netns tests run under the preload library.
# apache2-bin: the server binary and modules without the packaged service, which would
# start on the host (tests/netns/shared_listeners.sh writes its own configuration).
TEST_PACKAGES=(python3 nginx-light apache2-bin socat redis-server redis-tools memcached iperf3)

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}

main() {
  local wanted=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "$@")
  local missing
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  ((${#missing[@]} == 0)) && return 0

  echo "setup: installing ${missing[*]}" >&2
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

main "$@"
