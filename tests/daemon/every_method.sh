#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every /prpc and /guest method over both transports (unix socket and TCP): a good call answers
# 200 with JSON, a bad one 400 with upstream's {"error": ...}; malformed JSON is 400 everywhere.
set -u
vmm=$(realpath "$1") src=$2 build=$3
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-all.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
port=$(free_port)
python3 "$(dirname "$0")/kms_stub.py" > "$tmp/kms.port" & pids+=($!)
wait_for '[ -s "$tmp/kms.port" ]' 10
common="run_path = \"vms\"
kms_url = \"http://127.0.0.1:$(cat "$tmp/kms.port")\"
[image]
path = \"$(dirname "$image")\"
[cvm]
platform = \"none\"
accel = \"tcg\"
guest_channel = \"user-net\"
[key_provider]
enabled = false"
printf 'address = "127.0.0.1"\nport = %s\n%s\n' "$port" "$common" > "$tmp/tcp.toml"
mkdir -p "$tmp/u" && printf 'address = "unix:./vmm.sock"\n%s\n' "$common" > "$tmp/u/unix.toml"
start_daemon "$tmp/tcp.toml" "$tmp/log.tcp"
start_daemon "$tmp/u/unix.toml" "$tmp/log.unix"

for transport in tcp unix; do
  if [ $transport = tcp ]; then curl_=(curl -s); base="http://127.0.0.1:$port"
  else curl_=(curl -s --unix-socket "$tmp/u/vmm.sock"); base="http://x"; fi
  check 'wait_for "${curl_[*]} -f -o /dev/null $base/prpc/Version" 20' "$transport: daemon up"
  call() {  # call PATH BODY -> "<status> <body>"
    "${curl_[@]}" -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$base/$1" -d "$2"
    printf ' '; cat "$tmp/body"
  }
  good() { local r; r=$(call "$1" "$2"); [[ $r == 200\ * ]] || { echo "  $1 $2 -> $r"; return 1; }; }
  bad() {  # bad PATH BODY EXPECTED-ERROR-SUBSTRING
    local r; r=$(call "$1" "$2")
    [[ $r == 400\ * ]] && python3 -c 'import json,sys; e=json.loads(sys.argv[1])["error"]; sys.exit(0 if sys.argv[2] in e else 1)' "${r#400 }" "$3" ||
      { echo "  $1 $2 -> $r"; return 1; }
  }
  compose='{\"manifest_version\":2,\"name\":\"a\",\"runner\":\"docker-compose\"}'
  vm="{\"name\":\"all-$transport\",\"image\":\"$(basename "$image")\",\"compose_file\":\"$compose\",\"vcpu\":1,\"memory\":256,\"disk_size\":1,\"stopped\":true}"
  id=$(call prpc/CreateVm "$vm" | sed -n 's/^200 {"id":"\(.*\)"}$/\1/p')
  check '[ -n "$id" ]' "$transport: CreateVm good"
  check 'bad prpc/CreateVm "{\"name\":\"x\",\"image\":\"nope\",\"compose_file\":\"$compose\",\"vcpu\":1,\"memory\":1,\"disk_size\":1}" "Failed to load image"' "$transport: CreateVm bad"
  check 'good prpc/GetComposeHash "$vm" && bad prpc/GetComposeHash "{\"compose_file\":\"{}\"}" "Invalid compose file"' "$transport: GetComposeHash"
  check 'good prpc/Status "{}" && bad prpc/Status "{\"page\":\"x\"}" "field \`page\`"' "$transport: Status"
  check 'good prpc/GetInfo "{\"id\":\"$id\"}" && bad prpc/GetInfo "{\"id\":true}" "field \`id\`: expected a string"' "$transport: GetInfo"
  check 'good prpc/UpdateVm "{\"id\":\"$id\",\"user_config\":\"u\"}" && bad prpc/UpdateVm "{\"id\":\"nope\"}" "VM not found"' "$transport: UpdateVm"
  check 'good prpc/UpgradeApp "{\"id\":\"$id\",\"user_config\":\"v\"}" && bad prpc/UpgradeApp "{\"id\":\"../x\"}" "invalid VM id"' "$transport: UpgradeApp"
  check 'good prpc/ResizeVm "{\"id\":\"$id\",\"memory\":512}" && bad prpc/ResizeVm "{\"id\":\"$id\",\"disk_size\":0}" "greater than zero"' "$transport: ResizeVm"
  check 'good prpc/StartVm "{\"id\":\"$id\"}" && bad prpc/StartVm "{\"id\":\"nope\"}" "Failed to start VM: VM not found"' "$transport: StartVm"
  check 'good prpc/StopVm "{\"id\":\"$id\"}" && bad prpc/StopVm "{\"id\":\"nope\"}" "Failed to stop VM"' "$transport: StopVm"
  check 'bad prpc/ShutdownVm "{\"id\":\"$id\"}" "is not running"' "$transport: ShutdownVm (bad: stopped)"
  check 'good prpc/ListImages "" && good prpc/ListGpus "" && good prpc/Version "" && good prpc/GetMeta "null"' "$transport: ListImages, ListGpus, Version, GetMeta"
  check '[ "$(call prpc/GetAppEnvEncryptPubKey "{\"app_id\":\"0xABCDEF\"}")" = "200 {\"public_key\":\"fedcba\",\"signature\":\"\",\"signature_v1\":\"\",\"timestamp\":1700000000}" ] && bad prpc/GetAppEnvEncryptPubKey "{\"app_id\":\"zz\"}" "invalid hex"' "$transport: GetAppEnvEncryptPubKey passes through to the KMS"
  check 'good prpc/ReloadVms "{}" && good prpc/SvList "{}"' "$transport: ReloadVms, SvList"
  check 'bad prpc/SvStop "{\"id\":\"nope\"}" "Supervisor process not found" && bad prpc/SvRemove "{\"id\":\"nope\"}" "Process not found"' "$transport: SvStop, SvRemove"
  check 'good prpc/SvRemove "{\"id\":\"$id\"}"' "$transport: SvRemove of a stopped process"
  check 'good prpc/ListRegistryImages "" && bad prpc/PullRegistryImage "{\"tag\":\"x\"}" "not configured"' "$transport: registry methods"
  check 'bad prpc/DeleteImage "{\"id\":\"$(basename "$image")\"}" "in use by VM" && bad prpc/DeleteImage "{\"id\":\"..\"}" "invalid image name"' "$transport: DeleteImage"
  for m in Info SysInfo NetworkInfo ListContainers Shutdown; do
    check 'bad guest/$m "{\"id\":\"$id\"}" "is not running" && bad guest/$m "{\"id\":\"nope\"}" "vm not found"' "$transport: /guest/$m"
  done
  check 'good prpc/RemoveVm "{\"id\":\"$id\"}" && bad prpc/RemoveVm "{\"id\":\"nope\"}" "Failed to remove VM: VM not found"' "$transport: RemoveVm"
  for m in CreateVm Status GetInfo StartVm; do
    check 'bad prpc/$m "{not json" "failed to decode request"' "$transport: malformed JSON to $m"
  done
  check '[ "$(call prpc/NoSuchMethod "{}")" = "400 {
  \"error\": \"Service not found: NoSuchMethod\"
}" ]' "$transport: unknown method, pretty error"
  check '[ "$("${curl_[@]}" -o /dev/null -w %{http_code} "$base/prpc/a/b")" = 404 ]' "$transport: a path with more segments is 404"
  check '[ "$(head -c 11000000 /dev/zero | tr "\0" " " | "${curl_[@]}" -o "$tmp/big" -w %{http_code} -X POST -H "Content-Type: application/json" --data-binary @- "$base/prpc/Status")" = 400 ] && grep -q "payload too large" "$tmp/big"' "$transport: bodies over 10 MiB are refused"
done
exit $fail
