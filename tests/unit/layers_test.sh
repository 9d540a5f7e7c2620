#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The engine includes nothing of the server part, and each layer only what is below it
# (scripts/check_layers.py); and the check does catch a violation planted in a copy.
#   layers_test.sh SOURCE_ROOT
set -u
root=$1
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }
tmp=$(mktemp -d /tmp/vmm-layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$(python3 "$root/scripts/check_layers.py" "$root/libvmm" 2>&1); rc=$?
echo "$out"
check '[ $rc -eq 0 ]' "the tree keeps its layers"

plant() {  # plant FILE LINE: a copy of libvmm with LINE added to FILE; prints the checker's output
  rm -rf "$tmp/libvmm"; cp -r "$root/libvmm" "$tmp/libvmm"
  sed -i "0,/^#include/s||$2\n#include|" "$tmp/libvmm/$1"
  python3 "$root/scripts/check_layers.py" "$tmp/libvmm"
}
out=$(plant src/vm/vm_manager.cpp '#include "rpc/host_api.hpp"'); rc=$?
check '[ $rc -eq 1 ] && grep -q "vm/ may not include \"rpc/host_api.hpp\"" <<< "$out"' "an engine file including rpc/ fails the check"
out=$(plant src/vm/vm_lifecycle.cpp '#include <dstackvmm/server/host_api_server.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "includes the server part" <<< "$out"' "an engine file including a server header fails the check"
out=$(plant src/base/fs_util.cpp '#include "vm/vm_store.hpp"'); rc=$?
check '[ $rc -eq 1 ]' "a lower layer including a higher one fails the check"
out=$(plant include/dstackvmm/vm_manager.hpp '#include <dstackvmm/server/rpc.hpp>'); rc=$?
check '[ $rc -eq 1 ]' "a public engine header including the server part fails the check"
# Public headers belong to layers too: the three rules once broken through them must stay mended.
out=$(plant include/dstackvmm/qemu_command.hpp '#include <dstackvmm/vm_manager.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "qemu/ may not include <dstackvmm/vm_manager.hpp>" <<< "$out"' "a public qemu header including the engine's facade fails the check"
out=$(plant src/wire/json_codec.hpp '#include <dstackvmm/vm_manager.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "wire/ may not include <dstackvmm/vm_manager.hpp>" <<< "$out"' "the wire codec including the engine's facade fails the check"
out=$(plant include/dstackvmm/client/vmm_client.hpp '#include <dstackvmm/vm_manager.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "client/ may not include <dstackvmm/vm_manager.hpp>" <<< "$out"' "the client's public header including the engine's facade fails the check"
out=$(plant src/model/manifest.cpp '#include <dstackvmm/gpu_inventory.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "model/ may not include <dstackvmm/gpu_inventory.hpp> (allocation/" <<< "$out"' "the VM model including allocation fails the check"
out=$(plant include/dstackvmm/client/vmm_client.hpp '#include <nlohmann/json.hpp>'); rc=$?
check '[ $rc -eq 1 ] && grep -q "includes the third-party <nlohmann/json.hpp>" <<< "$out"' "a public header including a third-party library fails the check"
out=$(rm -rf "$tmp/libvmm"; cp -r "$root/libvmm" "$tmp/libvmm"; printf '#pragma once\n' > "$tmp/libvmm/include/dstackvmm/stray.hpp"
      python3 "$root/scripts/check_layers.py" "$tmp/libvmm"); rc=$?
check '[ $rc -eq 1 ] && grep -q "stray.hpp: a public header in no layer" <<< "$out"' "a public header placed in no layer fails the check"
exit $fail
