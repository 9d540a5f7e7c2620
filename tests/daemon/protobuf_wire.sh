#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# prpc's protobuf mode against the real daemon, driven by Python's google.protobuf (Debian's
# python3-protobuf) from our .proto files: every method, answers compared with JSON mode.
#   protobuf_wire.sh DSTACK_VMM SOURCE_ROOT
set -u
vmm=$(realpath "$1") src=$2
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-proto.XXXXXX)
trap cleanup EXIT
py=/usr/bin/python3  # Debian's, which python3-protobuf installs into
if ! $py -c 'import google.protobuf' 2>/dev/null; then
  echo "not ok - python3-protobuf is missing (scripts/deps.sh installs it)"; exit 1
fi
port=$(free_port)
python3 "$(dirname "$0")/kms_stub.py" > "$tmp/kms.port" & pids+=($!)
wait_for '[ -s "$tmp/kms.port" ]' 10
{ plain_config "$port"; printf 'kms_url = "http://127.0.0.1:%s"\n[cvm.port_mapping]\nenabled = true\nrange = [{ protocol = "tcp", from = 1024, to = 65535 }]\n' "$(cat "$tmp/kms.port")"; } > "$tmp/vmm.toml"
# kms_url is a top-level key: it must come before the first table.
sed -i '/^kms_url = /d' "$tmp/vmm.toml" && sed -i "1i kms_url = \"http://127.0.0.1:$(cat "$tmp/kms.port")\"" "$tmp/vmm.toml"
mkdir -p "$tmp/images/img"
echo '{"kernel":"k","initrd":"i","version":"0.5.4"}' > "$tmp/images/img/metadata.json"
touch "$tmp/images/img/k" "$tmp/images/img/i"
start_daemon "$tmp/vmm.toml" "$tmp/log"
check 'wait_for "curl -sf -o /dev/null http://127.0.0.1:$port/prpc/Version" 20' "daemon up"
$py "$(dirname "$0")/protobuf_wire.py" "http://127.0.0.1:$port" "$src/libvmm/proto" "$tmp" || fail=1
exit $fail
