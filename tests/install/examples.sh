#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The examples, as a user gets them: installed with `meson install --destdir`, the C++ ones
# built out of the tree through pkg-config and run against the real test guest (boot_vm boots,
# waits for and stops a VM with the library alone; list_vms asks the installed daemon), and
# provision.sh run with the installed vmmctl on examples/fleet.toml.
#   examples.sh SOURCE_ROOT BUILD_ROOT
set -u
export PS4='+ $SECONDS s: '
src=$(realpath "$1") build=$(realpath "$2")
source "$src/tests/daemon/lib.sh"
tmp=$(mktemp -d /tmp/vmm-examples.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
meson install -C "$build" --destdir "$tmp/root" --quiet --no-rebuild
pc=$(find "$tmp/root" -name dstackvmm.pc | head -1)
prefix=$(sed -n 's/^prefix=//p' "$pc")
bin=$tmp/root$prefix/bin ex=$tmp/root$prefix/share/doc/libdstackvmm/examples
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root" LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")")
check 'c++ -std=c++20 $ex/boot_vm.cpp -o $tmp/boot_vm $(pkg-config --cflags --libs dstackvmm-server) && c++ -std=c++20 $ex/list_vms.cpp -o $tmp/list_vms $(pkg-config --cflags --libs dstackvmm-client)' \
  "boot_vm and list_vms build from the installed examples with pkg-config"
check '$tmp/boot_vm $tmp/lib-vms $image > $tmp/boot_vm.out 2>&1 && grep -q "^status running, boot progress done" $tmp/boot_vm.out && grep -q "^status stopped" $tmp/boot_vm.out' \
  "boot_vm: the library alone boots a guest, hears it has booted, shuts it down"
[ $fail = 0 ] || cat "$tmp/boot_vm.out"
check '[ -z "$(ls $tmp/lib-vms)" ]' "boot_vm removed its VM"
# The installed daemon and vmmctl, with the test guest's images.
port=$(free_port)
mkdir -p "$tmp/d" && guest_config "$port" "$image" > "$tmp/d/vmm.toml"
printf '[supervisor]\nexe = "%s/supervisor"\n' "$bin" >> "$tmp/d/vmm.toml"
(cd "$tmp/d" && exec "$bin/dstack-vmm" -c vmm.toml > log 2>&1) & pids+=($!)
check 'wait_for "curl -s -o /dev/null http://127.0.0.1:$port/health" 20' "the installed daemon is up"
cp "$ex/fleet.toml" "$ex/web-compose.json" "$tmp/"
sed -i "s/dstack-test-0.6.0/$(basename "$image")/" "$tmp/fleet.toml"
export VMMCTL=$bin/vmmctl DSTACK_VMM_URL=http://127.0.0.1:$port
check '$ex/provision.sh $tmp/fleet.toml > $tmp/provision.json' "provision.sh applies the fleet and waits for it"
check 'python3 -c "import json,sys; d={v[\"name\"]: v[\"status\"] for v in json.load(open(sys.argv[1]))[\"vms\"]}; sys.exit(0 if d == {\"web\": \"running\", \"spare\": \"stopped\"} else 1)" $tmp/provision.json' \
  "its JSON: web running, spare stopped"
check '$tmp/list_vms http://127.0.0.1:$port | grep -q "web.*running"' "list_vms lists them through the client library"
check '$ex/provision.sh $tmp/fleet.toml > /dev/null' "provision.sh again: nothing to change, still exit 0"
check '[ "$(DSTACK_VMM_URL=http://127.0.0.1:1 $ex/provision.sh $tmp/fleet.toml > /dev/null 2>&1; echo $?)" = 4 ]' "an unreachable daemon: provision.sh exits 4, vmmctl's code"
for id in $("$bin/vmmctl" --json lsvm | python3 -c 'import json,sys; print(" ".join(v["id"] for v in json.load(sys.stdin)))'); do
  "$bin/vmmctl" stop -f "$id" > /dev/null; "$bin/vmmctl" remove "$id" > /dev/null
done
exit $fail
