#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# No VM is ever lost: kill -9 of the daemon while 3 guests run (their ports keep answering, a
# new daemon lists them running with the same CIDs and ports and can stop them), then kill -9
# of the supervisor (the guests keep running; the daemon starts a new supervisor that
# re-adopts them).
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-crash.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port)
{ guest_config "$port" "$image"; printf '[cvm.auto_restart]\nenabled = false\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
snapshot() {  # "id cid port status" per VM, sorted
  rpc Status '{}' | python3 -c 'import json,sys
for v in json.load(sys.stdin)["vms"]: print(v["id"], v["cid"], v["configuration"]["ports"][0]["host_port"], v["status"])' | sort
}
start_daemon "$tmp/vmm.toml" "$tmp/log.1"; daemon1=${pids[-1]}
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up, supervisor started"
webs=()
for i in 1 2 3; do
  web=$(free_port); webs+=("$web")
  rpc CreateVm "{\"name\":\"g$i\",\"image\":\"$(basename "$image")\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"g\\\",\\\"runner\\\":\\\"r\\\"}\",\"vcpu\":1,\"memory\":256,\"disk_size\":1,\"ports\":[{\"protocol\":\"tcp\",\"host_port\":$web,\"vm_port\":80}]}" > /dev/null
done
all_serve() { for w in "${webs[@]}"; do curl -sf -m 2 -o /dev/null "http://127.0.0.1:$w/" || return 1; done; }
check 'wait_for all_serve 180' "3 guests serve on their mapped ports"
before=$(snapshot)
check '[ "$(grep -c running <<<"$before")" = 3 ]' "3 running before the crash"

kill -9 "$daemon1"; wait "$daemon1" 2>/dev/null
check 'all_serve' "guests keep serving while no daemon runs"
# While no daemon runs, one guest loses its QMP socket and another its pid file.
read -r hurt1 hurt2 _ <<<"$(awk '{print $1}' <<<"$before" | tr '\n' ' ')"
rm -f "$tmp/vms/$hurt1/qmp.sock" "$tmp/vms/$hurt2/qemu.pid"
start_daemon "$tmp/vmm.toml" "$tmp/log.2"; daemon2=${pids[-1]}
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "a new daemon comes up"
after=$(snapshot)
check '[ "$after" = "$before" ]' "same VMs, CIDs, ports and status after the daemon crash"
check 'all_serve' "guests still serve"
degraded() { rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["degraded"])'; }
check '[ "$(degraded "$hurt1")" = "QMP socket is gone" ] && [ "$(degraded "$hurt2")" = "pid file is unreadable" ]' "re-adoption says what is missing (degraded, not killed)"
check '[ "$(pgrep -fc "qemu-system.*$tmp")" = 3 ]' "exactly 3 QEMUs: nothing was started twice"

sv=$(cat "$tmp/run/supervisor.pid")
kill -9 "$sv"
check 'all_serve' "guests keep serving while no supervisor runs"
# Status says "unknown" while no supervisor answers (never "exited"); the daemon starts a new
# one within a second or two, which re-adopts the guests.
check 'wait_for "[ \"\$(snapshot)\" = \"\$before\" ]" 20' "the daemon starts a new supervisor that re-adopts the guests"
check '[ "$(cat "$tmp/run/supervisor.pid")" != "$sv" ] && kill -0 "$(cat "$tmp/run/supervisor.pid")"' "a new supervisor runs"
check '[ "$(pgrep -fc "qemu-system.*$tmp")" = 3 ]' "still exactly 3 QEMUs"

for id in $(awk '{print $1}' <<<"$before"); do rpc StopVm "{\"id\":\"$id\"}" > /dev/null; done
check 'wait_for "[ \"\$(snapshot | grep -c stopped)\" = 3 ]" 30' "the new daemon can stop them all"
check '[ "$(pgrep -fc "qemu-system.*$tmp")" = 0 ]' "no QEMU left"
exit $fail
