#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds build-asan/: clang with AddressSanitizer and UBSan, plus the
# libFuzzer targets (the 'fuzz' suite). scripts/test.sh runs the unit and daemon tests and
# the fuzz targets from it.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build-asan/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dfuzz=true -Dfuzz_seconds="${FUZZ_SECONDS:-10}" -De2e_tests=false -Dcli=false >/dev/null
fi
ninja -C build-asan >/dev/null
