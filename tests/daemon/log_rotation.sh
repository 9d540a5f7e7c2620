#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# [cvm.log] on a real guest: a chatty guest's serial log is rotated (whole blocks cut to .1, markers,
# max_backups), a /logs follower streams the guest's output across every rotation, byte for byte
# (every line whole, no marker), a restart marks the boot; and
# `dstack-vmm run --dry-run` on the VM's folder prints exactly the argv the daemon launched.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-logrot.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port)
{ guest_config "$port" "$image"; cat <<TOML
[cvm.log]
max_bytes = "8K"
max_backups = 2
check_interval_secs = 1
TOML
} > "$tmp/vmm.toml"
start_daemon "$tmp/vmm.toml" "$tmp/log"
base="http://127.0.0.1:$port"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
compose='{"manifest_version":2,"name":"chatty","runner":"docker-compose","e2e_log_flood":true}'
req=$(python3 -c 'import json,sys; print(json.dumps({"name":"chatty","image":sys.argv[1],"compose_file":sys.argv[2],"vcpu":1,"memory":256,"disk_size":1}))' "$(basename "$image")" "$compose")
id=$(curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/CreateVm?json" -d "$req" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check '[ -n "$id" ]' "CreateVm returns an id"
wd="$tmp/vms/$id"
check 'wait_for "[ -f $wd/serial.log ]" 20' "QEMU writes the serial log"
curl -sN "$base/logs?id=$id&follow=true&ansi=false&lines=100000&ch=serial" > "$tmp/follow" & pids+=($!)
check 'wait_for "grep -q E2E-LOG-END $tmp/follow" 180' "the follower sees the guest's last line"
seen=$(grep -o '^E2E-LOG [0-9]*' "$tmp/follow" | sort -u | wc -l)
sent=$(grep -c '^E2E-LOG [0-9]* 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop' "$tmp/follow")
in_order=$(grep -o '^E2E-LOG [0-9]*' "$tmp/follow" | awk '{print $2}' | sort -n -c 2>/dev/null && echo yes || echo no)
cut_marker='===== rotated [0-9]* bytes to serial.log.1 @ 20[0-9-]*T[0-9:]*Z; the log goes on in serial.log ====='
echo "# the follower saw $seen of 400 lines ($sent whole) while the log was rotated"
check '[ "$seen" = 400 ] && [ "$sent" = 400 ] && [ "$in_order" = yes ]' "rotation loses nothing: every one of 400 lines, whole, once, in order"
check '! grep -q "===== rotated" "$tmp/follow"' "the stream is the guest's output only (the markers are in the files)"
check 'tail -n 1 "$wd/serial.log.1" | grep -q "^$cut_marker\$" && tail -n 1 "$wd/serial.log.2" | grep -q "^$cut_marker\$"' \
  "two rotations cut the running guest's log (.1 and .2 end with the cut marker), not copied and truncated"
check 'grep -q "^E2E-LOG 400 " "$wd/serial.log" "$wd/serial.log.1"' "the files hold the last lines"
check 'grep -q "E2E-LOG" "$wd/serial.log.1" && [ -f "$wd/serial.log.2" ] && [ ! -e "$wd/serial.log.3" ]' \
  "backups .1 and .2 hold older output, never a .3 (max_backups = 2)"
check 'wait_for "[ \$(stat -c %s $wd/serial.log) -le 8192 ]" 10' "the live log is brought back under max_bytes"

# The daemon's argv and a dry run on the VM's folder agree word for word.
qpid=$(cat "$wd/qemu.pid")
python3 - "$qpid" > "$tmp/argv.daemon" <<'PY'
import sys
print("\n".join(open(f"/proc/{sys.argv[1]}/cmdline", "rb").read().decode().rstrip("\0").split("\0")))
PY
"$vmm" -c "$tmp/vmm.toml" run --workdir "$wd" --dry-run > "$tmp/dry" 2> "$tmp/dry.err"
python3 -c 'import shlex,sys; print("\n".join(shlex.split(open(sys.argv[1]).readline())))' "$tmp/dry" > "$tmp/argv.dry"
check 'diff "$tmp/argv.daemon" "$tmp/argv.dry" && [ -s "$tmp/argv.dry" ]' "run --dry-run prints exactly the argv the daemon launched"
check '[ -d "$wd" ] && kill -0 "$qpid"' "the dry run touched neither the VM's folder nor its QEMU"
check 'grep -qxF "# shared/.sys-config.json" "$tmp/dry" && grep -A1 -xF "# shared/.sys-config.json" "$tmp/dry" | tail -1 | cmp -s - <(cat "$wd/shared/.sys-config.json"; echo)' \
  "the dry run shows the .sys-config.json the daemon wrote, byte for byte"
check '"$vmm" -c "$tmp/vmm.toml" run --workdir "$tmp/vms/not-here" --dry-run 2>&1 | grep -q "no VM in"' "a dry run on an empty folder says what is missing"

# A new boot rotates the logs and marks itself.
check 'curl -s -X POST -HContent-Type:application/json "$base/prpc/StopVm?json" -d "{\"id\":\"$id\"}" | grep -qx null' "StopVm"
check 'curl -s -X POST -HContent-Type:application/json "$base/prpc/StartVm?json" -d "{\"id\":\"$id\"}" | grep -qx null' "StartVm"
check 'grep -q "^===== boot @ 20[0-9-]*T[0-9:]*Z =====" "$wd/serial.log"' "the new boot is marked with an RFC 3339 time"
check 'grep -q "E2E-LOG-END" "$wd/serial.log.1"' "the last boot's log went to serial.log.1"
check 'curl -s -X POST -HContent-Type:application/json "$base/prpc/RemoveVm?json" -d "{\"id\":\"$id\"}" | grep -qx null' "RemoveVm"
check 'wait_for "[ ! -d $wd ]" 30' "the VM is gone"

# One VM without a daemon: `run VM_CONFIG --workdir D` boots it in the foreground (its host
# API served: boot progress reaches the guest's events) until a signal stops it.
echo "$req" > "$tmp/vm.json"
one="$tmp/oneshot/solo"
"$vmm" -c "$tmp/vmm.toml" run "$tmp/vm.json" --workdir "$one" > "$tmp/run.out" 2> "$tmp/run.err" & runner=$!; pids+=($runner)
check 'wait_for "grep -q E2E-GUEST-READY $one/serial.log 2>/dev/null" 120' "run boots the guest without a daemon"
check 'grep -q "VM solo is running" "$tmp/run.err"' "run says what it runs and how to stop it"
oqpid=$(cat "$one/qemu.pid")
kill -INT "$runner"
wait "$runner"; rc=$?
check '[ "$rc" = 0 ] && ! kill -0 "$oqpid" 2>/dev/null' "Ctrl-C stops the VM and run exits 0 (rc $rc)"
check '[ -f "$one/vm-manifest.json" ] && grep -q "VM solo stopped" "$tmp/run.err"' "the VM's folder stays for the next run"
exit $fail
