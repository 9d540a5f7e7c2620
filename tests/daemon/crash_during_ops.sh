#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of the daemon landing anywhere in a create or a remove: afterwards nothing is
# half-created and nothing leaks (workdir, process, supervisor entry), wherever the kill fell.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-ops.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port)
{ guest_config "$port" "$image"; printf '[cvm.auto_restart]\nenabled = false\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -m 20 -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
restart_daemon() {
  [ -n "${daemon:-}" ] && { kill -9 "$daemon"; wait "$daemon" 2>/dev/null; }
  start_daemon "$tmp/vmm.toml" "$tmp/log"; daemon=${pids[-1]}
  wait_for "curl -sf -o /dev/null $base/prpc/Version" 20
}
# Every workdir is a listed VM, every supervisor entry is a listed VM, and the QEMUs that
# run are exactly the VMs listed running.
consistent() {
  local listed dirs entries qemus running
  listed=$(rpc Status '{}' | python3 -c 'import json,sys; print(" ".join(sorted(v["id"] for v in json.load(sys.stdin)["vms"])))')
  running=$(rpc Status '{}' | python3 -c 'import json,sys; print(sum(v["status"] in ("running","stopping") for v in json.load(sys.stdin)["vms"]))')
  dirs=$(ls "$tmp/vms" 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')
  entries=$(rpc SvList '{}' | python3 -c 'import json,sys; print(" ".join(sorted(p["id"] for p in json.load(sys.stdin)["processes"])))')
  qemus=$(pgrep -fc "qemu-system.*$tmp/vms" || true)
  [ "$dirs" = "$listed" ] || { echo "  dirs [$dirs] != listed [$listed]"; return 1; }
  for e in $entries; do [[ " $listed " == *" $e "* ]] || { echo "  supervisor entry $e has no VM"; return 1; }; done
  [ "$qemus" = "$running" ] || { echo "  $qemus QEMUs for $running running VMs"; return 1; }
}
vm_json() { echo "{\"name\":\"$1\",\"image\":\"$(basename "$image")\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"g\\\",\\\"runner\\\":\\\"r\\\"}\",\"vcpu\":1,\"memory\":256,\"disk_size\":1}"; }

restart_daemon
for delay in 0 0.005 0.02 0.05 0.1 0.3; do
  rpc CreateVm "$(vm_json "c$delay")" > /dev/null &
  request=$!
  sleep "$delay"   # where the kill lands is the point of the test, not a synchronisation
  restart_daemon
  wait "$request" 2>/dev/null
  check 'wait_for consistent 20' "kill -9 ${delay}s into a create leaves a consistent state"
done
for id in $(rpc Status '{}' | python3 -c 'import json,sys; print(" ".join(v["id"] for v in json.load(sys.stdin)["vms"]))'); do
  rpc RemoveVm "{\"id\":\"$id\"}" > /dev/null
  restart_daemon   # at once: the removal is under way or not started
  check 'wait_for "consistent && ! ls $tmp/vms | grep -q $id" 30' "kill -9 during the removal of $id: it finishes, nothing leaks"
done
check '[ -z "$(ls "$tmp/vms")" ] && [ "$(pgrep -fc "qemu-system.*$tmp" || true)" = 0 ]' "no workdir and no QEMU left"
exit $fail
