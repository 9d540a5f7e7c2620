#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# After `meson install --destdir`: the tree has the binaries, headers, pkg-config files, systemd
# units (pointing at the installed binaries), man pages and examples; the sample files parse;
# and a program outside the tree builds against the installed headers and library through
# `pkg-config --cflags --libs dstackvmm`, and runs.
set -eu
build=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --quiet --no-rebuild
pc=$(find "$tmp/root" -name dstackvmm.pc | head -1)
[ -n "$pc" ] || { echo "not ok - dstackvmm.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
python3 - "$tmp/root" "$prefix" "$(dirname "$0")/../../examples" <<'PY' || exit 1
import configparser, os, subprocess, sys, yaml
root, prefix, examples = sys.argv[1], sys.argv[2], sys.argv[3]
at = lambda p: os.path.join(root, p.lstrip("/"))
def need(path, what):
    if not os.path.exists(at(path)):
        sys.exit(f"not ok - {what}: {path} is not installed")
for b in ("dstack-vmm", "vmmctl", "supervisor"):
    need(f"{prefix}/bin/{b}", "binary")
    if not os.access(at(f"{prefix}/bin/{b}"), os.X_OK): sys.exit(f"not ok - {b} is not executable")
for h in ("vm_manager.hpp", "vm_activity.hpp", "launch_record.hpp", "host_check.hpp", "client/vmm_client.hpp", "server/host_api_server.hpp"):
    need(f"{prefix}/include/dstackvmm/{h}", "public header")
need(f"{prefix}/share/man/man1/vmmctl.1", "man page")
need(f"{prefix}/share/man/man8/dstack-vmm.8", "man page")
for m in ("man1/vmmctl.1", "man8/dstack-vmm.8"):
    out = subprocess.run(["man", "-l", "-P", "cat", at(f"{prefix}/share/man/{m}")], capture_output=True, text=True,
                         env=dict(os.environ, MANWIDTH="100"))
    if out.returncode != 0 or "SYNOPSIS" not in out.stdout: sys.exit(f"not ok - man {m} does not render: {out.stderr}")
print("ok - binaries, public headers and man pages (rendered by man) installed")
for unit in ("dstack-vmm.service", "dstack-vmm-supervisor.service"):
    path = at(f"{prefix}/lib/systemd/system/{unit}")
    if not os.path.exists(path): sys.exit(f"not ok - systemd unit {unit} not installed")
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.read(path)
    for sect in ("Unit", "Service", "Install"):
        if sect not in c: sys.exit(f"not ok - {unit} has no [{sect}]")
    exe = c["Service"]["ExecStart"].split()[0]
    if not os.path.exists(at(exe)): sys.exit(f"not ok - {unit} runs {exe}, which the install does not have")
    if c["Service"].get("KillMode") != "process": sys.exit(f"not ok - {unit}: guests must survive a restart (KillMode=process)")
print("ok - systemd units installed, their ExecStart the installed binaries, guests left running on stop")
ds = yaml.safe_load(open(os.path.join(examples, "kubernetes/dstack-vmm-daemonset.yaml")))
spec = ds["spec"]["template"]
box = spec["spec"]["containers"][0]
assert ds["kind"] == "DaemonSet", ds["kind"]
assert box["livenessProbe"]["httpGet"]["path"] == "/health", "liveness is /health"
assert spec["metadata"]["annotations"]["prometheus.io/path"] == "/metrics", "scraped at /metrics"
assert str(spec["metadata"]["annotations"]["prometheus.io/port"]) == str(box["ports"][0]["containerPort"])
host_paths = {v["hostPath"]["path"] for v in spec["spec"]["volumes"] if "hostPath" in v}
assert {"/var/lib/dstack", "/run/dstack-vmm", "/dev"} <= host_paths, host_paths
print("ok - the DaemonSet parses: /health liveness, /metrics annotated on the API port, state on host paths")
PY
for sample in vmm-dev.toml vmm-tdx.toml; do
  out=$("$tmp/root$prefix/bin/dstack-vmm" -c "$(dirname "$0")/../../examples/$sample" check-config 2>&1) ||
    { echo "not ok - examples/$sample: $out"; exit 1; }
done
echo "ok - examples/vmm-dev.toml and vmm-tdx.toml load (check-config with the installed daemon)"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cat > "$tmp/app.cpp" <<'CPP'
#include <dstackvmm/dstackvmm.hpp>
#include <iostream>
int main() {
  auto c = dstackvmm::parse_config("[cvm]\ncid_start = 4000\n", dstackvmm::ParseOptions{});
  if (!c.ok()) return 1;
  std::cout << c->cvm.cid_start << " " << dstackvmm::api_version() << "\n";
  return 0;
}
CPP
c++ -std=c++20 "$tmp/app.cpp" -o "$tmp/app" $(pkg-config --cflags --libs dstackvmm)
libdir=$(dirname "$(dirname "$pc")")  # <libdir>/pkgconfig/dstackvmm.pc
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/app")
[ "$out" = "4000 0.6.0" ] || { echo "not ok - program output: $out"; exit 1; }
echo "ok - out-of-tree program built with pkg-config and ran: $out"

# The client library the same way: a program that only talks to a daemon.
cat > "$tmp/client.cpp" <<'CPP'
#include <dstackvmm/client/deploy_spec.hpp>
#include <dstackvmm/client/vmm_client.hpp>
#include <iostream>
int main() {
  auto bad = dstackvmm::client::VmmClient::create({.url = "ftp://x"});
  auto none = dstackvmm::client::VmmClient::create({.url = "unix:/nonexistent/vmm.sock"})->version();
  std::cout << *dstackvmm::client::parse_memory_mb("2G") << " " << dstackvmm::error_code_name(bad.error().code) << " "
            << dstackvmm::error_code_name(none.error().code) << "\n";
  return 0;
}
CPP
c++ -std=c++20 "$tmp/client.cpp" -o "$tmp/client" $(pkg-config --cflags --libs dstackvmm-client)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/client")
[ "$out" = "2048 invalid_argument unavailable" ] || { echo "not ok - client program output: $out"; exit 1; }
echo "ok - out-of-tree client program built with pkg-config dstackvmm-client and ran: $out"
