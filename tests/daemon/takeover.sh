#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Taking over a run_path an upstream VMM was using: its supervisor (ours here, which speaks
# upstream's protocol) runs a VM's process deployed with upstream's ProcessConfig (CID 2345, a
# vm-launcher command line, upstream's note), and the VM's folder is laid out as upstream lays
# it (no vm-runtime.json; launch.json is upstream's swtpm launch spec). The daemon adopts the
# process with its CID, gives no other VM that CID, leaves launch.json alone, and stops it.
set -u
vmm=$(realpath "$1") supervisor=$(realpath "$2")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-takeover.XXXXXX)
trap cleanup EXIT
port=$(free_port)
mkdir -p "$tmp/run"
tiny_image "$tmp/images"
{ plain_config "$port"; printf '[cvm]\nplatform = "none"\naccel = "tcg"\nguest_channel = "user-net"\n[cvm.auto_restart]\nenabled = false\n'
  printf '[supervisor]\nsock = "run/supervisor.sock"\npid_file = "run/supervisor.pid"\nlog_file = "run/supervisor.log"\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
field() { rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"][sys.argv[1]])' "$2"; }

id=7d1f0c2a-3b4e-4f5a-8c6d-9e0f1a2b3c4d
wd="$tmp/vms/$id"
mkdir -p "$wd/shared"
app=$(printf 'a%.0s' $(seq 40))
cat > "$wd/vm-manifest.json" <<JSON
{"id":"$id","name":"upstream-vm","app_id":"$app","vcpu":1,"memory":1024,"disk_size":1,"image":"img","port_map":[],"created_at_ms":1700000000000,"hugepages":false,"pin_numa":false,"gpus":null,"kms_urls":[],"gateway_urls":[],"no_tee":false,"swtpm":false,"volumes":[]}
JSON
echo '{"started":true}' > "$wd/vm-state.json"
echo '{"manifest_version":2,"name":"up","runner":"docker-compose"}' > "$wd/shared/app-compose.json"
echo "{\"app_id\":\"$app\"}" > "$wd/shared/.instance_info"
spec='{"qemu":{"command":"qemu-system-x86_64","args":[]},"swtpm":{"command":"/usr/bin/swtpm","args":[]},"swtpm_socket":"'$wd'/swtpm/swtpm.sock"}'
echo "$spec" > "$wd/launch.json"

"$supervisor" --uds "$tmp/run/supervisor.sock" --pid-file "$tmp/run/supervisor.pid" > /dev/null 2>&1 & pids+=($!)
check 'wait_for "[ -S $tmp/run/supervisor.sock ]" 10' "a supervisor runs, as the upstream VMM left it"
# The VM's process as upstream deploys it: a stand-in with a launcher's command line, which
# says when it is told to stop (its child names the workdir, so nothing can outlive the test).
deploy=$(python3 - "$id" "$wd" <<'PY'
import json, sys
vid, wd = sys.argv[1], sys.argv[2]
print(json.dumps({"id": vid, "name": "upstream-vm", "command": "/bin/sh",
                  "args": ["-c", "trap 'echo stand-in got SIGTERM; kill $!; exit 0' TERM; python3 -c 'import time; time.sleep(600)' \"$2\" & wait",
                           "vm-launcher", "--spec", wd + "/launch.json"],
                  "env": {}, "cwd": wd, "stdout": wd + "/stdout.log", "stderr": wd + "/stderr.log",
                  "pidfile": wd + "/qemu.pid", "cid": 2345, "note": '{"kind":"cvm","live_for":null,"serial_logappend":true}'}))
PY
)
check 'curl -sf --unix-socket "$tmp/run/supervisor.sock" -X POST http://s/deploy -d "$deploy" > /dev/null' "the VM's process is deployed with upstream's ProcessConfig"
check 'wait_for "[ -s $wd/qemu.pid ]" 10' "it runs"
proc=$(cat "$wd/qemu.pid")

(cd "$tmp" && exec "$vmm" -c vmm.toml > "$tmp/log" 2>&1) & pids+=($!)
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "the daemon comes up on that supervisor"
check '[ "$(rpc GetInfo "{\"id\":\"$id\"}" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"info\"][\"configuration\"][\"stopped\"])")" = False ]' "its started flag is read from vm-state.json"
check '[ "$(field $id status)" = running ] && [ "$(field $id cid)" = 2345 ]' "the VM is adopted running, with the CID its supervisor entry has"
check '[ "$(cat $wd/qemu.pid)" = "$proc" ] && kill -0 "$proc"' "the same process: nothing was started"
check '[ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"cid\"])" "$wd/vm-runtime.json")" = 2345 ]' "the CID is kept for the next daemon too"
check '[ "$(cat "$wd/launch.json")" = "$spec" ] && [ ! -e "$wd/launch-history.json" ]' "upstream's launch.json is left alone"
other=$(rpc CreateVm '{"name":"mine","image":"img","compose_file":"{\"manifest_version\":2,\"name\":\"m\",\"runner\":\"r\"}","vcpu":1,"memory":256,"disk_size":1,"stopped":true}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check '[ -n "$other" ] && [ "$(field $other cid)" != 2345 ]' "a new VM gets another CID"
rpc StopVm "{\"id\":\"$id\"}" > /dev/null
check 'wait_for "[ \"\$(field $id status)\" = stopped ]" 30 && ! kill -0 "$proc" 2>/dev/null' "StopVm stops the adopted process"
check 'grep -q "stand-in got SIGTERM" "$wd/stdout.log"' "a launcher (args[0] vm-launcher, as upstream tells it) is sent SIGTERM first"
exit $fail
