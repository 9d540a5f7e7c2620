#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two daemons on one host with the same CID pool never hand out one CID twice: they share the
# host-wide registry. A daemon killed with -9 gives up its stopped VMs' CIDs; when it comes
# back, a VM whose CID another daemon took meanwhile is refused a start, with the way out.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-cids.XXXXXX)
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap "" EXIT
export DSTACK_VMM_CID_REGISTRY=$tmp/run/cids.json
for d in a b; do
  mkdir -p "$tmp/$d/images/dstack-x"
  printf '{"kernel":"k","initrd":"i","version":"0.5.4"}' > "$tmp/$d/images/dstack-x/metadata.json"
  touch "$tmp/$d/images/dstack-x/k" "$tmp/$d/images/dstack-x/i"
  eval "port_$d=$(free_port)"
  port_var=port_$d
  { plain_config "${!port_var}"; printf '[cvm]\ncid_start = 5000\ncid_pool_size = 4\nqemu_path = "/bin/true"\n'; } > "$tmp/$d/vmm.toml"
done
start() { (cd "$tmp/$1" && exec "$vmm" -c vmm.toml > log 2>&1) & pids+=($!); eval "pid_$1=$!"; }
up() { local p=port_$1; wait_for "curl -s -o /dev/null http://127.0.0.1:${!p}/prpc/Version" 20; }
start a; start b
check 'up a && up b' "two daemons up, the same pool: CIDs 5000-5003"
create() {  # create DAEMON NAME -> the new id
  local p=port_$1
  curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:${!p}/prpc/CreateVm" \
    -d "{\"name\":\"$2\",\"image\":\"dstack-x\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"x\\\",\\\"runner\\\":\\\"docker-compose\\\"}\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"stopped\":true}"
}
jobs_=()
for i in 1 2; do
  create a a$i > "$tmp/ca$i" & jobs_+=($!)
  create b b$i > "$tmp/cb$i" & jobs_+=($!)
done
wait "${jobs_[@]}"
cids() { cat "$tmp"/{a,b}/vms/*/vm-runtime.json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(sorted(str(json.loads(l)["cid"]) for l in sys.stdin.read().replace("}{","}\n{").splitlines() if l.strip())))'; }
check '[ "$(cids)" = "5000 5001 5002 5003" ]' "four VMs created at once on two daemons: four different CIDs ($(cids))"
check 'create a a3 | grep -q "CID pool exhausted host-wide"' "a fifth: the pool is exhausted host-wide, and the error says so"
kill -9 "$pid_a"
wait_for '! kill -0 $pid_a 2>/dev/null' 10
check 'create b b3 | grep -q "\"id\""' "with daemon a gone (-9), its stopped VMs' CIDs are free to take"
b3=$(basename "$(grep -l '"name":"b3"' "$tmp"/b/vms/*/vm-manifest.json | xargs dirname)")
taken=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cid"])' "$tmp/b/vms/$b3/vm-runtime.json")
victim=$(grep -l "\"cid\":$taken" "$tmp"/a/vms/*/vm-runtime.json | xargs dirname | xargs basename)
start a
check 'up a' "daemon a back"
check 'curl -s -X POST -H "Content-Type: application/json" http://127.0.0.1:$port_a/prpc/StartVm -d "{\"id\":\"$victim\"}" | grep -q "CID $taken is held by VM $b3 of another VMM on this host"' \
  "a's VM whose CID b took is refused a start, naming the holder"
check 'grep -q "CID $taken is held by VM $b3" $tmp/a/log' "and a logged the conflict when it loaded the VM"
exit $fail
