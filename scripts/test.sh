#!/usr/bin/env bash
# Runs every test: installs what is missing, then builds three trees and runs one ctest
# over all of them:
#   build/         Release with -Werror: unit tests (and, as root, the netns tests);
#   build-asan/    the unit and packet tests under AddressSanitizer and UndefinedBehaviorSanitizer,
#                  and a multistackd that the security suite attacks (netns.security_asan);
#   build-fuzz/    the libFuzzer targets (clang-16), each run for MS_FUZZ_SECONDS (30).
# First checks the format of the lines changed since the tree was formatted
# (scripts/check_format.sh). Ends with ctest's summary; exits non-zero if any test fails.
#
# Usage: scripts/test.sh [extra ctest arguments, e.g. -L unit]
#        scripts/test.sh --quick   the developer's loop: the Release tree only, its unit,
#                                  packet and sim tests, and no package installs
set -euo pipefail
cd "$(dirname "$0")/.."

# The formatter checks the lines changed since the tree was last formatted as a whole
# (scripts/format-base), so that every later change keeps .clang-format.
check_format() { bash scripts/check_format.sh --base "$(cat scripts/format-base)"; }

if [[ "${1:-}" == --quick ]]; then
  shift
  MS_FORMAT_SKIP_IF_MISSING=1 check_format
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMS_WERROR=ON >/dev/null
  cmake --build build -j "$(nproc)"
  cd build
  exec ctest --output-on-failure -L 'unit|packet|sim' "$@"
fi

bash scripts/setup.sh
echo "== format"
check_format
jobs=$(nproc)
fuzz_seconds=${MS_FUZZ_SECONDS:-30}

echo "== build-asan: unit tests with ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMS_SANITIZE=ON -DMS_WERROR=ON -DMS_BENCH=OFF >/dev/null
cmake --build build-asan --target unit_tests packet_tests multistackd -j "$jobs"

echo "== build-fuzz: libFuzzer targets"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_FUZZ=ON -DMS_WERROR=ON \
    -DCMAKE_CXX_COMPILER=clang++-16 >/dev/null
cmake --build build-fuzz -j "$jobs"

echo "== build: Release"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMS_WERROR=ON \
    -DMS_SANITIZER_BUILD_DIR="$PWD/build-asan" -DMS_FUZZ_BUILD_DIR="$PWD/build-fuzz" \
    -DMS_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build build -j "$jobs"

echo "== ctest"
cd build
ctest --output-on-failure "$@"
