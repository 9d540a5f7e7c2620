#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds into build/. In CI warnings are errors.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build ${CI:+-Dwerror=true} >/dev/null
fi
ninja -C build >/dev/null
