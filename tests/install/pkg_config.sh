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

# The client library the same way: a program that only talks to a daemon.
cat > "$tmp/client.cpp" <<'CPP'
#include <dstackvmm/client/deploy_spec.hpp>
#include <dstackvmm/client/vmm_client.hpp>
#include <iostream>
int main() {
  auto bad = dstackvmm::client::VmmClient::create({.url = "ftp://x"});
  auto none = dstackvmm::client::VmmClient::create({.url = "unix:/nonexistent/vmm.sock"})->version();
  std::cout << *dstackvmm::client::parse_memory_mb("2G") << " " << dstackvmm::error_code_name(bad.error().code) << " "
            << dstackvmm::error_code_name(none.error().code) << "\n";
  return 0;
}
CPP
c++ -std=c++20 "$tmp/client.cpp" -o "$tmp/client" $(pkg-config --cflags --libs dstackvmm-client)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/client")
[ "$out" = "2048 invalid_argument unavailable" ] || { echo "not ok - client program output: $out"; exit 1; }
echo "ok - out-of-tree client program built with pkg-config dstackvmm-client and ran: $out"
