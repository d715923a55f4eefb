#!/usr/bin/env bash
# cmake --install, as a packager or an operator runs it (README, "Running MultiStack as a
# service"), into a scratch prefix: the daemon, msctl and the examples answer --help; the
# preload library, the headers, the libraries and the systemd unit are where they belong;
# and a program built with `pkg-config --cflags --libs multistack` links against the
# installed libraries alone and runs (it reports that no switch runs, by name).
# Usage: BIN_DIR=build install.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=$(cd "${BIN_DIR:?}" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
prefix="$TMP/prefix"
cmake --install "$BIN_DIR" --prefix "$prefix" >"$TMP/install.log" 2>&1 || fail "cmake --install: $(cat "$TMP/install.log")"

# The whole help first: grep -q stops reading at its match, and the daemon, still writing,
# would die of SIGPIPE, which pipefail reports as a failure.
help=$("$prefix/sbin/multistackd" --help) || fail "multistackd --help exited with $?"
grep -q -- "--outage-limit-ms" <<<"$help" || fail "multistackd --help does not name --outage-limit-ms"
for tool in msctl ms-httpd utcp-echo ms-udp-echo ms-pktgen; do
  "$prefix/bin/$tool" --help >/dev/null || fail "$tool --help"
done
preload=$(find "$prefix" -name libmultistack-preload.so)
[[ -n $preload ]] || fail "no preload library"
[[ -f $prefix/include/multistack/loop/event_loop.hpp && -f $prefix/include/multistack/client/multistack.hpp ]] ||
  fail "the headers are not installed"
unit="$prefix/lib/systemd/system/multistackd@.service"
[[ -f $unit ]] || fail "no systemd unit"
grep -q "^ExecStart=$prefix/sbin/multistackd --iface %i" "$unit" || fail "the unit does not start the installed daemon: $(cat "$unit")"
grep -q "^KillSignal=SIGUSR2" "$unit" || fail "the unit's stop is not a restart"
grep -q "^ExecStart=.* --fd-store" "$unit" && grep -q "^FileDescriptorStoreMax=" "$unit" && grep -q "^Type=notify" "$unit" ||
  fail "the unit's restart is not a hand-over through the file-descriptor store: $(cat "$unit")"
grep -q "^Restart=on-failure" "$unit" || fail "the unit does not restart the daemon"

pc_dir=$(dirname "$(find "$prefix" -name multistack.pc)")
cat >"$TMP/app.cpp" <<'CPP'
#include <iostream>
#include "client/multistack.hpp"
#include "loop/event_loop.hpp"
int main(int, char** argv) {
    auto loop = ms::loop::EventLoop::open(argv[1]);
    if (loop) return 2;
    std::cout << loop.error().message() << "\n";
    return loop.error().error == ms::client::Error::switch_not_running ? 0 : 1;
}
CPP
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs multistack) || fail "pkg-config multistack"
libdir=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --variable=libdir multistack)
c++ -o "$TMP/app" "$TMP/app.cpp" $flags -Wl,-rpath,"$libdir" >"$TMP/cc.log" 2>&1 || fail "a program does not build with pkg-config's flags ($flags): $(cat "$TMP/cc.log")"
out=$("$TMP/app" "$TMP/none.sock") || fail "the installed libraries do not work: $out"
echo "ok - cmake --install: daemon, tools (--help), preload, headers, libraries, pkg-config (a program built against them says: $out), systemd unit"
