#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A daemon told to stop stops at once: SIGTERM does not wait for the start-up host check's
# probes (a QEMU that hangs on them here), and a supervisor that went away while it shuts down
# is not started again behind it.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-shutdown.XXXXXX)
trap cleanup EXIT
port=$(free_port)
mkdir -p "$tmp/images"
# A QEMU that never answers (the host check asks it for its version and its objects).
printf '#!/bin/sh\nexec python3 -c "import time; time.sleep(600)" "$0"\n' > "$tmp/hanging-qemu"
chmod +x "$tmp/hanging-qemu"
{ plain_config "$port"; printf '[cvm]\nplatform = "none"\naccel = "tcg"\nqemu_path = "%s"\n' "$tmp/hanging-qemu"
  printf '[supervisor]\nsock = "run/supervisor.sock"\npid_file = "run/supervisor.pid"\nlog_file = "run/supervisor.log"\n'; } > "$tmp/vmm.toml"
(cd "$tmp" && exec "$vmm" -c vmm.toml > "$tmp/log" 2>&1) & daemon=$!; pids+=($daemon)
check 'wait_for "curl -sf -o /dev/null http://127.0.0.1:$port/prpc/Version" 20' "daemon up"
check 'wait_for "pgrep -f \"time.sleep.600. $tmp/hanging-qemu\" > /dev/null" 10' "its host check waits on a QEMU that hangs"
sv=$(cat "$tmp/run/supervisor.pid")
kill -9 "$sv"; wait_for "gone $sv" 10
t0=$(date +%s%N)
kill -TERM "$daemon"
check 'wait_for "gone $daemon" 5' "SIGTERM: the daemon is gone within 5 s"
echo "# exited $(( ($(date +%s%N) - t0) / 1000000 )) ms after SIGTERM"
check '! pgrep -f "time.sleep.600. $tmp/hanging-qemu" > /dev/null' "the hanging probes were ended, not left behind"
check '! sed -n "/shutting down/,\$p" "$tmp/log" | grep -q "starting a new one"' "no supervisor was started while shutting down"
check '[ ! -e "$tmp/run/supervisor.pid" ] || ! kill -0 "$(cat "$tmp/run/supervisor.pid")" 2>/dev/null' "none runs behind it"
exit $fail
