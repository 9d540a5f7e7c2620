#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dstack-vmm --check-config: every problem with file:line:col and a non-zero exit; the seed passes.
set -u
vmm=$(realpath "$1") src=$2 shared=$3
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }

cd "$src/tests/data/configs"
out=$("$vmm" --check-config -c bad.toml 2>&1); rc=$?
echo "$out"
check '[ $rc -ne 0 ]' "bad config exits non-zero"
check 'grep -qxF "bad.toml:2:11: workers: must be greater than zero" <<<"$out"' "workers reported"
check 'grep -qxF "bad.toml:6:13: cvm.cid_start: expected an integer, got string \"x\"" <<<"$out"' "type error reported"
check 'grep -qxF "bad.toml:7:22: cvm.max_allocable_vcpu: must be greater than zero" <<<"$out"' "vcpu limit reported"
check 'grep -qxF "bad.toml:11:10: cvm.port_mapping.range[0]: range start 200 exceeds end 100" <<<"$out"' "range reported"
check 'grep -qxF "bad.toml:8:1: cvm.cid_strat: warning: unknown key (did you mean cid_start?)" <<<"$out"' "unknown key warned"

out=$("$vmm" --check-config -c "$shared/fixtures/seed-vmm.toml" 2>&1); rc=$?
check '[ $rc -eq 0 ] && [ "$out" = "configuration is valid" ]' "seed sample is valid"

out=$("$vmm" --check-config -c /nonexistent/vmm.toml 2>&1); rc=$?
check '[ $rc -ne 0 ] && grep -q "/nonexistent/vmm.toml: cannot open config file" <<<"$out"' "missing file named"

# --print-config round-trips: printing the printed config again changes nothing.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$vmm" --print-config -c "$shared/fixtures/seed-vmm.toml" > "$tmp/a.toml"
(cd "$tmp" && "$vmm" --print-config -c a.toml > b.toml)
check 'grep -q "^\[cvm\]" "$tmp/a.toml" && cmp -s "$tmp/a.toml" "$tmp/b.toml"' "print-config is a fixed point"
exit $fail
