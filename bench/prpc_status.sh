#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: /prpc/Status throughput and the daemon's memory with N stopped VMs (default 50).
#   bench/prpc_status.sh [N]     (needs wrk; run after ./scripts/run.sh built everything)
set -eu
cd "$(dirname "$0")/.."
n=${1:-50}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 2; }
tmp=$(mktemp -d /tmp/vmm-bench.XXXXXX)
source tests/daemon/lib.sh
image=$(guest_image . build)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
guest_config "$port" "$image" 'log_level = "warn"' > "$tmp/vmm.toml"
build/tools/dstack-vmm/dstack-vmm -c "$tmp/vmm.toml" > "$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid; pkill -9 -f "$tmp"; rm -rf "$tmp"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/prpc/Version"; do sleep 0.05; done
compose='{\"manifest_version\":2,\"name\":\"b\",\"runner\":\"docker-compose\"}'
for i in $(seq 1 "$n"); do
  curl -s -X POST -HContent-Type:application/json "http://127.0.0.1:$port/prpc/CreateVm?json" \
    -d "{\"name\":\"b$i\",\"image\":\"$(basename "$image")\",\"compose_file\":\"$compose\",\"vcpu\":1,\"memory\":256,\"disk_size\":1,\"stopped\":true}" > /dev/null
done
cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"brief":true}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "Status (brief) with $n VMs, 2 threads x 16 connections, 10 s:"
wrk -t2 -c16 -d10s -s "$tmp/post.lua" "http://127.0.0.1:$port/prpc/Status" | grep -E "Requests/sec|Latency|requests in"
echo "daemon RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
