#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Clients without credentials cannot lock out those with them (admission_flood.py), on the
# real daemon with [auth] on.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-flood.XXXXXX)
trap cleanup EXIT
port=$(free_port)
mkdir -p "$tmp/images"
{ plain_config "$port"; printf '[cvm]\nplatform = "none"\naccel = "tcg"\n[auth]\nenabled = true\ntokens = ["s3cret"]\n'; } > "$tmp/vmm.toml"
(cd "$tmp" && exec "$vmm" -c vmm.toml > "$tmp/log" 2>&1) & pids+=($!)
check 'wait_for "curl -s -o /dev/null -H \"Authorization: Bearer s3cret\" http://127.0.0.1:$port/prpc/Version" 20' "daemon up, auth on"
admission=1; [ -n "${DSTACKVMM_SANITIZED:-}" ] && admission=0  # the accept hook is off under sanitizers
python3 "$(dirname "$0")/admission_flood.py" "$port" s3cret "${pids[-1]}" "$admission" || fail=1
exit $fail
