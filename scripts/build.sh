#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds into build/. In CI warnings are errors. -O2 without debug info:
# debug info costs a third of the compile time (a fresh build is most of the CI run); set up
# a build folder of your own with -Ddebug=true to debug.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build -Ddebug=false ${CI:+-Dwerror=true} >/dev/null
fi
ninja -C build >/dev/null
