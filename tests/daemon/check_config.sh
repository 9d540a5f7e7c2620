#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dstack-vmm --check-config: every problem with file:line:col and a non-zero exit; the seed passes.
set -u
vmm=$(realpath "$1") src=$2
seed="$src/tests/data/seed-vmm.toml"  # a copy of the sample users start from
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }

cd "$src/tests/data/configs"
out=$("$vmm" --check-config -c bad.toml 2>&1); rc=$?
echo "$out"
check '[ $rc -ne 0 ]' "bad config exits non-zero"
check 'grep -qxF "bad.toml:2:11: workers: 0 is outside 1..256" <<<"$out"' "workers reported"
check 'grep -qxF "bad.toml:6:13: cvm.cid_start: expected an integer, got string \"x\"" <<<"$out"' "type error reported"
check 'grep -qxF "bad.toml:7:22: cvm.max_allocable_vcpu: must be greater than zero" <<<"$out"' "vcpu limit reported"
check 'grep -qxF "bad.toml:11:10: cvm.port_mapping.range[0]: range start 200 exceeds end 100" <<<"$out"' "range reported"
check 'grep -qxF "bad.toml:8:1: cvm.cid_strat: warning: unknown key (did you mean cid_start?)" <<<"$out"' "unknown key warned"

out=$("$vmm" --check-config -c "$seed" 2>&1); rc=$?
check '[ $rc -eq 0 ] && [ "$out" = "configuration is valid" ]' "seed sample is valid"

out=$("$vmm" --check-config -c /nonexistent/vmm.toml 2>&1); rc=$?
check '[ $rc -ne 0 ] && grep -q "/nonexistent/vmm.toml: cannot open config file" <<<"$out"' "missing file named"

# Configs that would hurt the host are refused at load, each with the key and the way out.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
refused() {  # refused NAME EXPECTED-TEXT TOML...
  local name=$1 want=$2; shift 2
  printf '%s\n' "$@" > "$tmp/$name.toml"
  out=$("$vmm" --check-config -c "$tmp/$name.toml" 2>&1); rc=$?
  check '[ $rc -ne 0 ] && grep -qF -- "$want" <<<"$out"' "refused: $name"
}
refused root_run 'run_path: run_path "/" is a system folder' 'run_path = "/"' '[image]' 'path = "/srv/x/images"'
ln -s / "$tmp/to-root"
refused symlink_run 'resolve through symlinks: run_path "/" is a system folder' "run_path = \"$tmp/to-root\"" '[image]' 'path = "/srv/x/images"'
refused etc_run 'run_path "/etc" is a system folder' 'run_path = "/etc"' '[image]' 'path = "/srv/x/images"'
refused same 'are the same folder' 'run_path = "/srv/x/a"' '[image]' 'path = "/srv/x/a/"'
refused run_in_image 'are nested' 'run_path = "/srv/x/images/vm"' '[image]' 'path = "/srv/x/images"'
refused image_in_run 'are nested' 'run_path = "/srv/x"' '[image]' 'path = "/srv/x/images"'
refused workers 'workers: 100000 is outside 1..256' 'workers = 100000'
refused cids 'cvm.cid_pool_size: 4000000000 is outside' '[cvm]' 'cid_pool_size = 4000000000'
refused events 'event_buffer_size: 1000000 is outside' 'event_buffer_size = 1000000'
refused open_api 'set allow_insecure_remote = true' 'address = "0.0.0.0"' 'port = 9'
printf '%s\n' 'address = "0.0.0.0"' 'port = 9' 'allow_insecure_remote = true' > "$tmp/insecure_ok.toml"
check '"$vmm" --check-config -c "$tmp/insecure_ok.toml" >/dev/null 2>&1' "allow_insecure_remote = true lets it through"
printf '%s\n' 'address = "0.0.0.0"' 'port = 9' '[auth]' 'enabled = true' 'tokens = ["t"]' > "$tmp/auth_ok.toml"
check '"$vmm" --check-config -c "$tmp/auth_ok.toml" >/dev/null 2>&1' "a remote address with auth on is fine"

# --print-config round-trips: printing the printed config again changes nothing.
"$vmm" --print-config -c "$seed" > "$tmp/a.toml"
(cd "$tmp" && "$vmm" --print-config -c a.toml > b.toml)
check 'grep -q "^\[cvm\]" "$tmp/a.toml" && cmp -s "$tmp/a.toml" "$tmp/b.toml"' "print-config is a fixed point"
# Upstream's command shape: check-config as a command, --netd-socket accepted with a warning.
out=$("$vmm" -c "$seed" check-config 2>&1); rc=$?
check '[ $rc -eq 0 ] && [ "$out" = "configuration is valid" ]' "check-config as a command"
out=$("$vmm" -c "$seed" --netd-socket /run/x.sock check-config 2>&1); rc=$?
check '[ $rc -eq 0 ] && grep -q "warning: --netd-socket" <<<"$out"' "--netd-socket is accepted and said to be unused"
out=$("$vmm" -c "$seed" frobnicate 2>&1); rc=$?
check '[ $rc -ne 0 ]' "an unknown command is an error"
refused libvirt_filter 'cvm.network_filter.mode: "libvirt" (nwfilter rules' '[cvm.network_filter]' 'mode = "libvirt"'
refused deep_key 'a key of more than 32 dotted parts' "$(python3 -c 'print(".".join(["a"]*5000) + " = 1")')"
refused tee_simulator 'cvm.tee_simulator.platform: "sgx" is not one of' '[cvm.tee_simulator]' 'platform = "sgx"'
printf '%s\n' 'temp_dir = "/var/tmp"' '[netd]' 'libvirt_uri = "qemu:///session"' > "$tmp/warned.toml"
out=$("$vmm" --check-config -c "$tmp/warned.toml" 2>&1); rc=$?
check '[ $rc -eq 0 ] && grep -q "temp_dir: warning" <<<"$out" && grep -q "netd: warning" <<<"$out"' "keys upstream would not use either are warned about"

# The README's key table names every key --print-config prints.
"$vmm" --print-config -c "$seed" > "$tmp/full.toml"
missing=$(python3 - "$tmp/full.toml" "$src/README.md" <<'PY'
import re, sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
def keys(t, prefix=""):
    for k, v in t.items():
        if isinstance(v, dict) and v:
            yield from keys(v, prefix + k + ".")
        else:
            yield prefix + k
readme = open(sys.argv[2]).read()
section = readme[readme.index("## Configuration"):readme.index("## Trust boundaries")]
names = set()
for line in section.splitlines():
    if line.startswith("| `"):
        names.update(re.findall(r"`([a-z0-9_.*]+)`", line.split(" | ")[0]))
def covered(k):
    return k in names or any(n.endswith(".*") and k.startswith(n[:-1]) for n in names)
print(" ".join(k for k in keys(cfg) if not covered(k)))
PY
)
check '[ -z "$missing" ]' "the README's key table covers every key (missing: ${missing:-none})"
exit $fail
