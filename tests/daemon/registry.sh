#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ListRegistryImages / PullRegistryImage / DeleteImage against a static OCI registry on loopback:
# verified pulls land whole, bad ones leave nothing behind and say why.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-reg.XXXXXX)
trap cleanup EXIT
python3 "$(dirname "$0")/oci_registry.py" "$tmp/registry" > "$tmp/reg.port" & pids+=($!)
check 'wait_for "[ -s $tmp/reg.port ]" 20' "registry up"
port=$(free_port)
cat > "$tmp/vmm.toml" <<TOML
address = "127.0.0.1"
port = $port
run_path = "vms"
[image]
path = "images"
registry = "http://127.0.0.1:$(cat "$tmp/reg.port")/dstack/guest"
TOML
mkdir -p "$tmp/images"
start_daemon "$tmp/vmm.toml" "$tmp/log"
base="http://127.0.0.1:$port"
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up"
rpc() { curl -s -X POST "$base/prpc/$1?json" -d "$2"; }
tag_field() {  # tag_field TAG FIELD: one field of one tag in ListRegistryImages
  rpc ListRegistryImages '{}' | python3 -c 'import json,sys; t=[i for i in json.load(sys.stdin)["images"] if i["tag"]==sys.argv[1]]; print(json.dumps(t[0][sys.argv[2]]) if t else "missing")' "$1" "$2"
}
check '[ "$(rpc ListRegistryImages "{}" | python3 -c "import json,sys; print(\",\".join(i[\"tag\"] for i in json.load(sys.stdin)[\"images\"]))")" = "0.6.0,broken,nometa" ]' "tags listed, signature tag hidden"
check '[ "$(tag_field 0.6.0 local)" = false ]' "not local before the pull"
check '[ "$(rpc PullRegistryImage "{\"tag\":\"0.6.0\"}")" = null ]' "PullRegistryImage starts"
check 'wait_for "[ \"\$(tag_field 0.6.0 local)\" = true ] && [ \"\$(tag_field 0.6.0 pulling)\" = false ]" 30' "the pull completes and the image is local"
check '[ -f "$tmp/images/dstack-0.6.0/metadata.json" ] && [ "$(tag_field 0.6.0 error)" = "\"\"" ]' "image folder in place, no error"
check 'rpc ListImages "{}" | grep -q "\"name\":\"dstack-0.6.0\""' "ListImages shows the pulled image"
check '[ "$(rpc PullRegistryImage "{\"tag\":\"broken\"}")" = null ]' "pull of a corrupted image starts"
check 'wait_for "[ \"\$(tag_field broken pulling)\" = false ]" 30 && tag_field broken error | grep -q "digest mismatch for sha256:"' "a digest mismatch is reported"
rpc PullRegistryImage '{"tag":"nometa"}' > /dev/null
check 'wait_for "[ \"\$(tag_field nometa pulling)\" = false ]" 30 && [ "$(tag_field nometa error)" = "\"image has no metadata.json\"" ]' "an image without metadata.json is refused"
check '[ ! -e "$tmp/images/dstack-broken" ] && [ ! -e "$tmp/images/dstack-nometa" ] && [ -z "$(ls -A "$tmp/images" | grep tmp-pull)" ]' "failed pulls leave nothing behind"
check 'rpc DeleteImage "{\"id\":\"dstack-0.6.0\"}" | grep -qx null && [ ! -e "$tmp/images/dstack-0.6.0" ]' "DeleteImage removes the pulled image"
exit $fail
