#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `dstack-vmm vm-launcher --spec FILE`, the process that keeps swtpm and QEMU together, with
# /bin/sh stand-ins for both (upstream's launcher cases, and what a supervisor does to it):
# how each way of ending ends, that neither child outlives it, and that the socket goes.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-launcher.XXXXXX)
trap cleanup EXIT
sock="$tmp/swtpm.sock"
# spec SWTPM-SCRIPT QEMU-SCRIPT [STARTUP-MS]: a launch spec running the two shell scripts.
spec() {
  python3 - "$1" "$2" "$sock" "${3:-5000}" > "$tmp/launch.json" <<'PY'
import json, sys
print(json.dumps({"qemu": {"command": "/bin/sh", "args": ["-c", sys.argv[2], "qemu-stand-in"]},
                  "swtpm": {"command": "/bin/sh", "args": ["-c", sys.argv[1], "swtpm-stand-in"]},
                  "swtpm_socket": sys.argv[3], "startup_timeout_ms": int(sys.argv[4]), "shutdown_timeout_ms": 2000}))
PY
}
run() { "$vmm" vm-launcher --spec "$tmp/launch.json" > "$tmp/out" 2> "$tmp/err"; }
# Stand-ins name themselves on their command line (and their sleeps by length: swtpm's 601 s,
# QEMU's 602 s, exec'ed as the stand-in itself), so a survivor can be found.
left() { pgrep -f "$1-stand-in" > /dev/null || pgrep -fx "sleep $([ "$1" = swtpm ] && echo 601 || echo 602)" > /dev/null; }
make_socket="touch $sock; exec sleep 601"  # swtpm's part: the socket appears, then it serves
qemu_runs="exec sleep 602"

spec "$make_socket" 'exit 7'
run; rc=$?
check '[ $rc = 1 ] && grep -qx "Error: QEMU exited with exit status: 7" "$tmp/err"' "QEMU exits 7: the launcher fails, saying so"
check '! left swtpm && [ ! -e "$sock" ]' "and swtpm is stopped, its socket removed"

spec "touch $sock; sleep 0.2; exit 9" "$qemu_runs"
run; rc=$?
check '[ $rc = 1 ] && grep -qx "Error: swtpm exited with exit status: 9" "$tmp/err"' "swtpm exits 9: the launcher fails, saying so"
check '! left qemu' "and QEMU is stopped"

spec 'exec sleep 601' 'exit 0' 100
run; rc=$?
check '[ $rc = 1 ] && grep -q "timed out waiting for swtpm socket" "$tmp/err"' "no socket within startup_timeout_ms: an error"
check '! left swtpm && ! grep -q "started QEMU" "$tmp/out"' "swtpm is stopped, QEMU never started"

spec "$make_socket" 'sleep 0.1; exit 0'
run; rc=$?
check '[ $rc = 0 ] && ! left swtpm && [ ! -e "$sock" ]' "QEMU exits 0: success, swtpm stopped, socket removed"

python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["swtpm"]["command"]="/nonexistent/swtpm"; json.dump(s, open(sys.argv[1],"w"))' "$tmp/launch.json"
touch "$sock"
run; rc=$?
check '[ $rc = 1 ] && grep -q "failed to start /nonexistent/swtpm" "$tmp/err"' "a missing swtpm: an error naming it"
check '[ ! -e "$sock" ] && ! grep -q "started QEMU" "$tmp/out"' "the stale socket is removed, QEMU never started"

echo '{"launches":[]}' > "$tmp/launch.json"
run; rc=$?
check '[ $rc = 1 ] && grep -qx "Error: failed to parse launch spec: missing field \`qemu\`" "$tmp/err"' "a file that is no launch spec is refused"

# What a supervisor does: SIGTERM stops both (exit 0); SIGKILL leaves neither behind.
spec "$make_socket" "$qemu_runs"
"$vmm" vm-launcher --spec "$tmp/launch.json" > "$tmp/out" 2> "$tmp/err" & launcher=$!
check 'wait_for "left qemu" 10' "both run"
kill -TERM $launcher; wait $launcher; rc=$?
check '[ $rc = 0 ] && ! left qemu && ! left swtpm && [ ! -e "$sock" ]' "SIGTERM: both stopped, exit 0, socket removed"
"$vmm" vm-launcher --spec "$tmp/launch.json" > "$tmp/out" 2> "$tmp/err" & launcher=$!
check 'wait_for "left qemu" 10' "both run again"
kill -KILL $launcher; wait $launcher 2>/dev/null
check 'wait_for "! left qemu && ! left swtpm" 10' "SIGKILL of the launcher: neither child outlives it"
exit $fail
