#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: how long a new daemon takes after kill -9 of the old one, until
#   (a) 3 running guests all answer /guest/Info through it, and
#   (b) Status lists N stopped VMs (default 1000).
#   bench/recovery.sh [N] [BUILD_DIR]   (after ./scripts/run.sh built everything)
set -eu
cd "$(dirname "$0")/.."
n=${1:-1000}; build=${2:-build}
tmp=$(mktemp -d /tmp/vmm-rec.XXXXXX)
trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
source tests/daemon/lib.sh
image=$(guest_image . "$build")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
guest_config "$port" "$image" 'log_level = "warn"' > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
up() { until curl -sf -o /dev/null "$base/prpc/Version"; do sleep 0.01; done; }
ms() { date +%s%3N; }
create() {  # create NAME STOPPED
  curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/CreateVm?json" -d "{\"name\":\"$1\",\"image\":\"$(basename "$image")\",\"compose_file\":\"{\\\"manifest_version\\\":2,\\\"name\\\":\\\"b\\\",\\\"runner\\\":\\\"r\\\"}\",\"vcpu\":1,\"memory\":256,\"disk_size\":1,\"stopped\":$2}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'
}
agents_answer() { for id in "$@"; do curl -sf -X POST -H 'Content-Type: application/json' "$base/guest/Info?json" -d "{\"id\":\"$id\"}" -o /dev/null || return 1; done; }

"$build/tools/dstack-vmm/dstack-vmm" -c "$tmp/vmm.toml" > "$tmp/log" 2>&1 & pid=$!
up
ids=($(create r1 false) $(create r2 false) $(create r3 false))
until agents_answer "${ids[@]}"; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null || true
t0=$(ms); "$build/tools/dstack-vmm/dstack-vmm" -c "$tmp/vmm.toml" >> "$tmp/log" 2>&1 & pid=$!
up; t1=$(ms)
until agents_answer "${ids[@]}"; do sleep 0.01; done; t2=$(ms)
echo "3 running guests: daemon answering after $((t1 - t0)) ms, all 3 guest agents answering through it after $((t2 - t0)) ms"
for id in "${ids[@]}"; do curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/RemoveVm?json" -d "{\"id\":\"$id\"}" > /dev/null; done

for i in $(seq 1 "$n"); do create "s$i" true > /dev/null; done
kill -9 $pid; wait $pid 2>/dev/null || true
t0=$(ms); "$build/tools/dstack-vmm/dstack-vmm" -c "$tmp/vmm.toml" >> "$tmp/log" 2>&1 & pid=$!
until curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/Status?json" -d '{"brief":true,"page":1,"page_size":1}' 2>/dev/null | grep -q "\"total\":$n"; do sleep 0.01; done; t1=$(ms)
echo "$n stopped VMs: Status lists all after $((t1 - t0)) ms; daemon RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
t0=$(ms); for i in $(seq 1 50); do curl -s -o /dev/null -X POST -HContent-Type:application/json "$base/prpc/Status?json" -d '{"brief":true}'; done; t1=$(ms)
echo "Status (brief) of $n VMs: $(( (t1 - t0) / 50 )) ms each, 50 in a row"
kill $pid
