#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The spec's curl cheatsheet against the real daemon and a real guest: create over /prpc, the
# guest's Notify events in Status, /guest calls, /logs?follow streaming new serial lines.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-curl.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port) web=$(free_port)
python3 "$(dirname "$0")/key_provider.py" > "$tmp/kp.port" & pids+=($!)
wait_for '[ -s "$tmp/kp.port" ]' 10
kp_port=$(cat "$tmp/kp.port")
{ guest_config "$port" "$image"; cat <<TOML
[key_provider]
enabled = true
address = "127.0.0.1"
port = $kp_port
TOML
} > "$tmp/vmm.toml"
start_daemon "$tmp/vmm.toml" "$tmp/log"
base="http://127.0.0.1:$port"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
check 'curl -s $base/ | grep -q "<title>dstack-vmm</title>"' "the console page is served at /"
check 'curl -s $base/api-docs/openapi.json | grep -q "\"/prpc/CreateVm\""' "/api-docs/openapi.json lists the methods"
check 'curl -s $base/api-docs/docs | grep -q "/api-docs/openapi.json"' "/api-docs/docs serves Swagger UI"
compose='{"manifest_version":2,"name":"web","runner":"docker-compose"}'
req=$(python3 -c 'import json,sys; print(json.dumps({"name":"web","image":sys.argv[1],"compose_file":sys.argv[2],"vcpu":1,"memory":256,"disk_size":1,"ports":[{"protocol":"tcp","host_port":int(sys.argv[3]),"vm_port":80,"host_address":"127.0.0.1"}]}))' "$(basename "$image")" "$compose" "$web")
id=$(curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/CreateVm?json" -d "$req" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check '[ -n "$id" ]' "CreateVm returns an id"
progress() { curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/Status?json" -d '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["boot_progress"])'; }
check 'wait_for "[ \"\$(progress)\" = done ]" 120' "the guest's Notify reaches Status (boot_progress done)"
check 'curl -s "$base/prpc/GetInfo?id=$id" | grep -q "\"found\":true"' "GET GetInfo?id= (cheatsheet)"
sealed=$(printf 'etouq-tset' | od -An -tx1 | tr -d ' \n')  # the test quote, reversed by the key provider
check 'curl -s "$base/prpc/GetInfo?id=$id" | grep -q "\"body\":\"$sealed\",\"event\":\"test.sealing_key\""' "GetSealingKey: guest -> host API -> key provider -> guest"
check 'curl -s -H "Content-Type: application/json" -d "{\"id\":\"$id\"}" $base/prpc/StartVm | grep -qx null' "StartVm of a running VM is a no-op (cheatsheet)"
check 'curl -s -X POST -HContent-Type:application/json "$base/guest/SysInfo?json" -d "{\"id\":\"$id\"}" | grep -q "\"kernel_version\":\"6.1"' "/guest/SysInfo answers from the guest"
check 'curl -s -X POST -HContent-Type:application/json "$base/guest/Info?json" -d "{\"id\":\"$id\"}" | grep -q "\"version\":\"dstack-test-agent"' "/guest/Info answers from the guest"
check 'curl -s http://127.0.0.1:$web/ | grep -q compose_hash' "the mapped port serves the guest's page"
curl -sN "$base/logs?id=$id&follow=true&ansi=false&lines=100&ch=serial" > "$tmp/follow" & pids+=($!)
check 'wait_for "grep -q E2E-GUEST-READY $tmp/follow" 10' "/logs tails the serial log"
check 'curl -s -X POST -HContent-Type:application/json "$base/prpc/ShutdownVm?json" -d "{\"id\":\"$id\"}" | grep -qx null' "ShutdownVm"
check 'wait_for "grep -q \"Power down\" $tmp/follow" 30' "/logs?follow streams new serial lines as they appear"
check 'wait_for "curl -s -X POST -HContent-Type:application/json $base/prpc/Status?json -d {} | grep -q \"\\\"status\\\":\\\"stopped\\\"\"" 30' "the VM reaches stopped"
check 'curl -s -X POST -HContent-Type:application/json "$base/prpc/RemoveVm?json" -d "{\"id\":\"$id\"}" | grep -qx null' "RemoveVm"
check 'wait_for "curl -s -X POST -HContent-Type:application/json $base/prpc/Status?json -d {} | grep -q \"\\\"total\\\":0\"" 30' "the VM is gone"

# The same API over a unix socket (the default deployment).
# Only the first address/port pair is the server's; [key_provider] has its own.
sed -e "0,/^address = /s|^address = .*|address = \"unix:./vmm.sock\"|" -e "0,/^port = /{/^port = /d}" "$tmp/vmm.toml" > "$tmp/unix.toml"
start_daemon "$tmp/unix.toml" "$tmp/log.unix"
check 'wait_for "curl -sf -o /dev/null --unix-socket $tmp/vmm.sock http://x/prpc/Version" 20' "unix daemon up"
check 'curl -s --unix-socket "$tmp/vmm.sock" -X POST -HContent-Type:application/json "http://x/prpc/Status?json" -d "{}" | grep -q "\"vms\":\[\]"' "Status over the unix socket (cheatsheet)"
check 'curl -s --unix-socket "$tmp/vmm.sock" "http://x/prpc/GetInfo?id=$id" | grep -q "\"found\":false"' "GetInfo over the unix socket (cheatsheet)"
check '[ "$(curl -s -o /dev/null -w "%{http_code} %{content_type}" --unix-socket $tmp/vmm.sock -X POST -H "Content-Type: application/octet-stream" --data-binary "" http://x/prpc/Status)" = "200 application/octet-stream" ]' "protobuf mode: an empty StatusRequest answers a StatusResponse"
exit $fail
