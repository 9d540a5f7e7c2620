#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: the daemon's threads and RSS (from /proc/<pid>/status) idle, with N running
# guests (default 10) and with M stopped VMs on disk (default 1000).
#   bench/footprint.sh [BUILD_DIR] [N] [M]   (after ./scripts/run.sh built everything)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}; n=${2:-10}; m=${3:-1000}
tmp=$(mktemp -d /tmp/vmm-foot.XXXXXX)
trap 'kill $pid 2>/dev/null; pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
source tests/daemon/lib.sh
image=$(guest_image . "$build")
port=$(free_port)
guest_config "$port" "$image" 'log_level = "warn"' > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
rpc() { curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/$1?json" -d "$2"; }
create() {  # create NAME STOPPED -> id
  rpc CreateVm "{\"name\":\"$1\",\"image\":\"$(basename "$image")\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"b\\\",\\\"runner\\\":\\\"r\\\"}\",\"vcpu\":1,\"memory\":128,\"disk_size\":1,\"stopped\":$2}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'
}
report() { echo "$1: threads $(awk '/^Threads/ {print $2}' /proc/$pid/status), RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"; }
running() { [ "$(rpc Status '{"brief":true}' | grep -o '"status":"running"' | wc -l)" -ge "$1" ]; }

"$build/tools/dstack-vmm/dstack-vmm" -c "$tmp/vmm.toml" > "$tmp/log" 2>&1 & pid=$!
wait_for "curl -sf -o /dev/null $base/prpc/Version" 20
report "idle, 0 VMs"
ids=()
for i in $(seq 1 "$n"); do ids+=("$(create "r$i" false)"); done
wait_for "running $n" 60
report "$n running guests"
for id in "${ids[@]}"; do rpc StopVm "{\"id\":\"$id\"}" > /dev/null; rpc RemoveVm "{\"id\":\"$id\"}" > /dev/null; done
for i in $(seq 1 "$m"); do create "s$i" true > /dev/null; done
rpc Status '{"brief":true}' > /dev/null
report "$m stopped VMs on disk"
