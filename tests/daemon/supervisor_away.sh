#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# While the supervisor cannot answer, nothing is decided on a guess. With 3 guests running
# and auto-restart on (every 2 s): the supervisor is killed and kept away for 8 s (no VM shows
# exited, no started flag changes, never a second QEMU for a workdir); it comes back and
# re-adopts every guest; a guest killed afterwards is restarted. A stopped (SIGSTOP)
# supervisor does not delay Status. A QEMU its supervisor forgot (state lost) does not
# outlive a StopVm or RemoveVm that answered success.
set -u
vmm=$(realpath "$1") src=$2 build=$3
supervisor=$(dirname "$vmm")/../supervisor/supervisor
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-away.XXXXXX)
trap 'kill -CONT $(cat "$tmp/run/supervisor.pid" 2>/dev/null) 2>/dev/null; cleanup' EXIT  # cleanup ends all named after $tmp
image=$(guest_image "$src" "$build")
port=$(free_port)
{ guest_config "$port" "$image"
  printf '[cvm.auto_restart]\nenabled = true\ninterval = 2\nmax_retries = 100\nbackoff_base_secs = 1\nbackoff_max_secs = 1\n'
  printf '[supervisor]\nauto_start = false\nsock = "run/supervisor.sock"\npid_file = "run/supervisor.pid"\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -m 5 -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
start_supervisor() {
  "$supervisor" --uds "$tmp/run/supervisor.sock" --pid-file "$tmp/run/supervisor.pid" --log-file "$tmp/run/supervisor.log" \
    --remove-existing-uds < /dev/null > /dev/null 2>&1 &
  wait_for "[ -S $tmp/run/supervisor.sock ] && curl -sf --unix-socket $tmp/run/supervisor.sock http://x/ping >/dev/null" 10
}
statuses() { rpc Status '{}' | python3 -c 'import json,sys
for v in json.load(sys.stdin)["vms"]: print(v["id"], v["status"], str(v["configuration"]["stopped"]).lower())' | sort; }
# The most QEMUs any one workdir has had at once (the guests' command lines name their workdir).
qemus_per_vm() { for id in "${ids[@]}"; do pgrep -fc "qemu-system.*$tmp/vms/$id/"; done | sort -n | tail -1; }
max_seen=0
watch_qemus() { local n; n=$(qemus_per_vm); [ "$n" -gt "$max_seen" ] && max_seen=$n; true; }

mkdir -p "$tmp/run"
check 'start_supervisor' "a supervisor runs (started by hand: the daemon may not start one)"
start_daemon "$tmp/vmm.toml" "$tmp/log"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
ids=()
for i in 1 2 3; do
  ids+=("$(rpc CreateVm "{\"name\":\"g$i\",\"image\":\"$(basename "$image")\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"g\\\",\\\"runner\\\":\\\"r\\\"}\",\"vcpu\":1,\"memory\":256,\"disk_size\":1}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')")
done
check 'wait_for "[ \"\$(statuses | grep -c \" running false\")\" = 3 ]" 60' "3 guests running"
before=$(statuses)

sv=$(cat "$tmp/run/supervisor.pid")
kill -9 "$sv"
shown_exited=0 flags_changed=0
deadline=$((SECONDS + 8))
while [ $SECONDS -lt $deadline ]; do  # 4 restart intervals without a supervisor
  now=$(statuses)
  grep -q " exited " <<< "$now" && shown_exited=1
  [ "$(awk '{print $1, $3}' <<< "$now")" = "$(awk '{print $1, $3}' <<< "$before")" ] || flags_changed=1
  watch_qemus
  sleep 0.2
done
check '[ $shown_exited = 0 ]' "no VM shown exited while the supervisor is away"
check '[ "$(statuses | awk '"'"'{print $2}'"'"' | sort -u)" = unknown ]' "every VM shown unknown meanwhile"
check '[ $flags_changed = 0 ]' "no started flag changed"
check 'start_supervisor' "the supervisor comes back"
check 'wait_for "[ \"\$(statuses)\" = \"\$before\" ]" 20' "every guest re-adopted, as it was"
watch_qemus
check '[ "$max_seen" = 1 ]' "never a second QEMU for one VM (most seen for one workdir: $max_seen)"

victim=${ids[0]}
pid=$(cat "$tmp/vms/$victim/qemu.pid")
kill -9 "$pid"
check 'wait_for "[ -f $tmp/vms/$victim/qemu.pid ] && [ \"\$(cat $tmp/vms/$victim/qemu.pid)\" != $pid ] && statuses | grep -q \"$victim running\"" 30' "a guest killed afterwards is restarted"

sv=$(cat "$tmp/run/supervisor.pid")
kill -STOP "$sv"
t0=$(date +%s%N)
rpc Status '{}' > /dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check '[ $ms -lt 1000 ]' "a stopped supervisor does not delay Status (${ms} ms)"
check 'wait_for "[ \"\$(statuses | awk '"'"'{print \$2}'"'"' | sort -u)\" = unknown ]" 20' "and its VMs become unknown"
hcode() { curl -s -o "$tmp/health" -w '%{http_code}' "http://127.0.0.1:$port/health"; }
check '[ "$(hcode)" = 503 ] && grep -q "\"supervisor\":{\"error\"" "$tmp/health"' "/health says unhealthy (503), naming the supervisor"
check '! grep -q "sock\|$tmp" "$tmp/health"' "without naming its socket (no path in /health)"
kill -CONT "$sv"
check 'wait_for "[ \"\$(statuses | grep -c \" running false\")\" = 3 ]" 20' "running again once it answers"
check 'wait_for "[ \"\$(hcode)\" = 200 ]" 20' "/health is ok again"

# The supervisor dies and its table is lost: its QEMUs run on, known to no launcher.
kill -9 "$sv"
# Until the kill has taken, its socket still listens, and a new supervisor rightly refuses it.
wait_for "gone $sv" 10
rm -rf "$tmp/run/supervisor-state.json" "$tmp/run/supervisor-state.json.d"
check 'start_supervisor' "a supervisor without the old table"
stopme=${ids[1]} removeme=${ids[2]}
check 'wait_for "pgrep -f \"qemu-system.*$tmp/vms/$stopme/\" >/dev/null" 5' "an orphaned QEMU runs"
out=$(rpc StopVm "{\"id\":\"$stopme\"}")
check '! grep -q error <<< "$out"' "StopVm answers success ($out)"
check '! pgrep -f "qemu-system.*$tmp/vms/$stopme/" >/dev/null' "and no QEMU of that VM is left"
rpc RemoveVm "{\"id\":\"$removeme\"}" > /dev/null
check 'wait_for "[ ! -d $tmp/vms/$removeme ]" 30' "RemoveVm finishes"
check '! pgrep -f "qemu-system.*$tmp/vms/$removeme/" >/dev/null' "and no QEMU of the removed VM is left"
for id in "${ids[@]}"; do rpc StopVm "{\"id\":\"$id\"}" > /dev/null; done
check '[ "$(pgrep -fc "qemu-system.*$tmp")" = 0 ]' "no QEMU left"
exit $fail
