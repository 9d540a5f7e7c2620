#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# From a fresh Debian machine to a running dstack-vmm: install what is missing, build, and
# serve on the embedded development profile (state under ./.dstack-vmm, URL printed).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
mkdir -p .dstack-vmm/images .dstack-vmm/vms
# The small test guest, ready to boot (cached after the first build).
image=$(tests/guest/build-image.sh .dstack-vmm/images | tail -1)
echo "test image: $(basename "$image") in .dstack-vmm/images" >&2
exec build/tools/dstack-vmm/dstack-vmm "$@"
