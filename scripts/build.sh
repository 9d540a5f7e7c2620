#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds into build/. Under scripts/test.sh (WERROR=1) and in CI warnings
# are errors; the run command builds without, so a newer compiler's new warning does not stop
# a user from running the daemon. -O2 without debug info:
# debug info costs a third of the compile time (a fresh build is most of the CI run); set up
# a build folder of your own with -Ddebug=true to debug.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build -Ddebug=false >/dev/null
fi
# Only ever switched on (a switch rebuilds everything): a tree the tests built stays strict.
if [ -n "${WERROR:-}${CI:-}" ]; then meson configure build -Dwerror=true >/dev/null; fi
ninja -C build >/dev/null
