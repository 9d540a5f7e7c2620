#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A guest opens 300 connections to the host-API address at once, half of them garbage. The
# host starts no process for them (guestfwd used to run one root socat per connection), the
# daemon's threads stay bounded, the other VM and the management API keep working, and the
# flooding guest's own notifies get through once it stops.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-flood.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port)
guest_config "$port" "$image" > "$tmp/vmm.toml"
start_daemon "$tmp/vmm.toml" "$tmp/log"; daemon=${pids[-1]}
base="http://127.0.0.1:$port"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
threads() { ls "/proc/$daemon/task" | wc -l; }
create() {  # create NAME COMPOSE-EXTRA
  local compose="{\"manifest_version\":2,\"name\":\"$1\",\"runner\":\"docker-compose\"$2}"
  python3 -c 'import json,sys; print(json.dumps({"name":sys.argv[1],"image":sys.argv[2],"compose_file":sys.argv[3],"vcpu":1,"memory":256,"disk_size":1}))' \
    "$1" "$(basename "$image")" "$compose" | curl -s -X POST -HContent-Type:application/json "$base/prpc/CreateVm?json" -d @- |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
progress() { curl -s "$base/prpc/GetInfo?id=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["boot_progress"])'; }
calm=$(create calm "")
check 'wait_for "[ \"\$(progress $calm)\" = done ]" 120' "the calm guest boots"
idle=$(threads)
echo "# before the flood: $idle threads, rss $(awk '/VmRSS/ {print $2}' /proc/$daemon/status) kB"
flood=$(create flood ',"e2e_flood_host_api":true')
check 'wait_for "[ \"\$(progress $flood)\" = flooding ]" 120' "the flooding guest starts its flood"
# While the guest floods: no helper process, threads bounded, everyone else answered.
most=0 helpers=0
for i in $(seq 1 20); do
  t=$(threads); [ "$t" -gt "$most" ] && most=$t
  n=$(pgrep -fc "socat.*$tmp" || true); [ "$n" -gt "$helpers" ] && helpers=$n
  curl -sf -m 2 -o /dev/null "$base/prpc/Version" || echo "  Version did not answer during the flood"
done
echo "# during the flood: at most $most threads, $helpers helper processes, rss $(awk '/VmRSS/ {print $2}' /proc/$daemon/status) kB"
check '[ "$helpers" = 0 ]' "no host process is started for the guest's connections"
check '[ "$most" -le $((idle + 4)) ]' "the daemon's threads stay bounded ($most, idle $idle)"
check 'curl -sf -m 5 -X POST -HContent-Type:application/json "$base/prpc/Status?json" -d "{}" | grep -q "\"name\":\"calm\""' "Status answers during the flood"
check 'curl -s -X POST -HContent-Type:application/json "$base/guest/Info?json" -d "{\"id\":\"$calm\"}" | grep -q dstack-test-agent' "the calm guest's agent answers"
check 'wait_for "[ \"\$(progress $flood)\" = done ]" 120' "the flooding guest's notifies get through after the flood"
check 'grep -q "E2E-GUEST: flood done" "$tmp/vms/$flood/serial.log"' "the guest ran its whole flood"
exit $fail
