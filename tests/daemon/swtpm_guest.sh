#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# key_provider "tpm" with Debian's real swtpm and the real test guest: the supervisor runs
# `dstack-vmm vm-launcher`, which runs swtpm and QEMU; the guest finds a TPM 2.0 and reads a
# PCR through it; kill -9 of the daemon leaves all three running and re-adopted; a stop ends
# both children and removes the TPM's socket; the TPM's state outlives the stop and goes with
# the VM's removal.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-swtpm.XXXXXX)
trap cleanup EXIT
"$src/tests/guest/build-image.sh" "$build/guest-image" > /dev/null
image="$build/guest-image/dstack-test-tpm-0.6.0"
port=$(free_port)
{ guest_config "$port" "$image"; printf '[cvm.auto_restart]\nenabled = false\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
events() { rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; [print(e["event"], e["body"]) for e in json.load(sys.stdin)["info"]["events"]]'; }
status() { rpc GetInfo "{\"id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["status"])'; }
compose='{\"manifest_version\":2,\"name\":\"t\",\"runner\":\"docker-compose\",\"key_provider\":\"tpm\"}'
start_daemon "$tmp/vmm.toml" "$tmp/log.1"; daemon1=${pids[-1]}
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
id=$(rpc CreateVm "{\"name\":\"tpm\",\"image\":\"$(basename "$image")\",\"compose_file\":\"$compose\",\"vcpu\":1,\"memory\":256,\"disk_size\":1}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wd="$tmp/vms/$id"
check '[ -n "$id" ] && python3 -c "import json,sys; assert json.load(open(sys.argv[1]))[\"swtpm\"] is True" "$wd/vm-manifest.json"' "the manifest says swtpm"
check 'wait_for "events $id | grep -q \"^test.tpm tpm0 version 2 pcr0 [0-9A-F]\{64\}\$\"" 240' "the guest finds a TPM 2.0 and reads PCR 0 through it"
check 'wait_for "events $id | grep -qx \"boot.progress done\"" 60' "the guest boots to the end"
launcher=$(cat "$wd/qemu.pid")
check 'grep -qa "vm-launcher" "/proc/$launcher/cmdline"' "the supervisor's process is the launcher (qemu.pid names it)"
check '[ "$(pgrep -fc "swtpm socket.*$wd")" = 1 ] && [ "$(pgrep -fc "qemu-system.*$wd")" = 1 ]' "one swtpm and one QEMU beside it"
check 'python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s[\"swtpm_socket\"].endswith(\"/swtpm/swtpm.sock\")" "$wd/launch.json"' "launch.json is upstream's launch spec"
check '[ "$(stat -c %a "$wd/swtpm/swtpm.sock")" = 600 ] && [ "$(stat -c %u "$wd/swtpm/swtpm.sock")" = "$(id -u)" ]' "the TPM's socket is the QEMU user's alone (0600)"
check '[ -s "$wd/swtpm/tpm2-00.permall" ]' "the TPM's state is in the VM's folder"
pcr_before=$(events "$id" | sed -n 's/^test.tpm .* pcr0 //p')
echo "# the guest read PCR 0 = $pcr_before"
check 'python3 -c "import json,sys; assert json.loads(json.load(open(sys.argv[1]))[\"vm_config\"])[\"swtpm\"] is True" "$wd/shared/.sys-config.json"' "vm_config says swtpm (the TPM changes the measured ACPI)"

kill -9 "$daemon1"; wait "$daemon1" 2>/dev/null
check 'kill -0 "$launcher" && [ "$(pgrep -fc "swtpm socket.*$wd")" = 1 ] && [ "$(pgrep -fc "qemu-system.*$wd")" = 1 ]' "kill -9 of the daemon: launcher, swtpm and QEMU keep running"
start_daemon "$tmp/vmm.toml" "$tmp/log.2"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "a new daemon comes up"
check 'wait_for "[ \"\$(status $id)\" = running ]" 20' "the TPM VM is re-adopted running"
check '[ "$(cat "$wd/qemu.pid")" = "$launcher" ] && [ "$(pgrep -fc "qemu-system.*$wd")" = 1 ]' "the same launcher, nothing started twice"

rpc StopVm "{\"id\":\"$id\"}" > /dev/null
check 'wait_for "[ \"\$(status $id)\" = stopped ]" 30' "StopVm stops it"
check 'wait_for "! kill -0 $launcher 2>/dev/null && [ \$(pgrep -fc \"swtpm socket.*$wd\") = 0 ] && [ \$(pgrep -fc \"qemu-system.*$wd\") = 0 ]" 20' \
  "the launcher, swtpm and QEMU are all gone"
check '[ ! -e "$wd/swtpm/swtpm.sock" ] && [ -s "$wd/swtpm/tpm2-00.permall" ]' "the socket is removed, the TPM's state kept"
check 'grep -q "received Terminated; stopping QEMU and swtpm" "$wd/stdout.log"' "the launcher was told to stop (SIGTERM), not killed"
n=$(events "$id" | grep -c '^test.tpm' || true)
rpc StartVm "{\"id\":\"$id\"}" > /dev/null
check 'wait_for "[ \$(events $id | grep -c \"^test.tpm\") -gt $n ]" 240' "started again, the guest finds its TPM again"
check '[ "$(events "$id" | sed -n "s/^test.tpm .* pcr0 //p" | tail -1)" = "$pcr_before" ]' "PCR 0 reads the same (the same firmware measured into it)"

rpc RemoveVm "{\"id\":\"$id\"}" > /dev/null
check 'wait_for "[ ! -d $wd ]" 30' "RemoveVm deletes the folder, TPM state with it"
check '[ "$(pgrep -fc "swtpm socket.*$tmp")" = 0 ] && [ "$(pgrep -fc "qemu-system.*$tmp")" = 0 ]' "nothing left running"
exit $fail
