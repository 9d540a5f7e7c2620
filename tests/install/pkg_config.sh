#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# After `meson install --destdir`, a program outside the tree builds against the installed
# headers and library through `pkg-config --cflags --libs dstackvmm`, and runs.
set -eu
build=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --quiet --no-rebuild
pc=$(find "$tmp/root" -name dstackvmm.pc | head -1)
[ -n "$pc" ] || { echo "not ok - dstackvmm.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cat > "$tmp/app.cpp" <<'CPP'
#include <dstackvmm/dstackvmm.hpp>
#include <iostream>
int main() {
  auto c = dstackvmm::parse_config("[cvm]\ncid_start = 4000\n", dstackvmm::ParseOptions{});
  if (!c.ok()) return 1;
  std::cout << c->cvm.cid_start << " " << dstackvmm::api_version() << "\n";
  return 0;
}
CPP
c++ -std=c++20 "$tmp/app.cpp" -o "$tmp/app" $(pkg-config --cflags --libs dstackvmm)
libdir=$(dirname "$(dirname "$pc")")  # <libdir>/pkgconfig/dstackvmm.pc
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/app")
[ "$out" = "4000 0.6.0" ] || { echo "not ok - program output: $out"; exit 1; }
echo "ok - out-of-tree program built with pkg-config and ran: $out"
