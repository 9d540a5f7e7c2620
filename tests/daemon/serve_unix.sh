#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dstack-vmm on a unix socket: answers prpc, 0600, refuses a live socket, replaces a stale
# one, and removes its socket on SIGTERM.
set -u
vmm=$(realpath "$1")
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }
tmp=$(mktemp -d /tmp/vmm-serve.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; pkill -9 -f "$tmp"; rm -rf "$tmp"' EXIT
cat > "$tmp/vmm.toml" <<TOML
address = "unix:./vmm.sock"
log_level = "info"
run_path = "vms"
[image]
path = "images"
TOML
wait_for() {  # wait_for CONDITION SECONDS
  local deadline=$((SECONDS + $2))
  while ! eval "$1"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.05; done
}
export XDG_RUNTIME_DIR="$tmp/xdg"
start() { "$vmm" -c "$tmp/vmm.toml" > "$tmp/out.$1" 2>&1 & pids+=($!); }
answers() { curl -sf --unix-socket "$tmp/vmm.sock" http://x/prpc/Version > "$tmp/version.json"; }

start 1; first=${pids[0]}
check 'wait_for answers 20' "Version answers over the unix socket"
check 'grep -q "\"version\":\"0.6.0\"" "$tmp/version.json"' "Version has the upstream shape"
check '[ "$(stat -c %a "$tmp/vmm.sock")" = 600 ]' "socket is created 0600"
check 'curl -sf --unix-socket "$tmp/vmm.sock" http://x/prpc/GetMeta | grep -q "\"max_cvm_number\":1000"' "GetMeta answers"
check 'curl -sI --unix-socket "$tmp/vmm.sock" http://x/prpc/Version | grep -qi "^X-App-Version: v0.6.0"' "X-App-Version header"
check 'grep -q "\"pid\": $first," "$tmp"/xdg/dstack-vmm/*.json && grep -q "\"address\": \"unix:$tmp/vmm.sock\"" "$tmp"/xdg/dstack-vmm/*.json' "discovery file names our pid and address"

start 2; second=${pids[1]}
check 'wait_for "! kill -0 $second 2>/dev/null" 10' "a second daemon on a live socket exits"
check 'grep -q "is in use by a running server" "$tmp/out.2"' "and says the socket is in use"
check 'answers' "the first daemon still answers"

kill -TERM "$first"
check 'wait_for "! kill -0 $first 2>/dev/null" 10' "SIGTERM stops the daemon"
wait "$first"; rc=$?
check '[ $rc -eq 0 ]' "clean exit status"
check '[ ! -e "$tmp/vmm.sock" ]' "socket removed on exit"
check '[ -z "$(ls "$tmp/xdg/dstack-vmm")" ]' "discovery file removed on exit"

start 3; third=${pids[2]}
check 'wait_for answers 20' "third daemon up"
kill -9 "$third"; wait "$third" 2>/dev/null
check '[ -S "$tmp/vmm.sock" ]' "kill -9 leaves a stale socket"
start 4
check 'wait_for answers 20' "a new daemon replaces the stale socket (reuse = true)"
exit $fail
