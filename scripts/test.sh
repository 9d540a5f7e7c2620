#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what is missing, build, and run every test suite. Exit status is the tests'.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
export WERROR=1  # the builds the tests run from treat warnings as errors (build.sh, sanitize.sh)
scripts/build.sh
rc=0
run() {  # run BUILD-DIR MESON-TEST-ARGS...: one meson test run, its result lines, its log on failure
  local dir=$1 r=0; shift
  meson test -C "$dir" --no-rebuild --print-errorlogs "$@" > "$dir/test-output.txt" 2>&1 || r=$?
  grep -E '^ *[0-9]+/[0-9]+ ' "$dir/test-output.txt" || true
  [ $r -eq 0 ] || { cat "$dir/test-output.txt"; rc=1; }
}
logs=(build/meson-logs/testlog.json)
run build "$@"
# With no arguments, the unit and daemon tests again under ASan and UBSan, then every fuzz
# target for its bounded time (scripts/sanitize.sh builds them with clang).
if [ $# -eq 0 ]; then
  scripts/sanitize.sh
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run build-asan --suite unit --suite fuzz
  logs+=(build-asan/meson-logs/testlog.json)
fi
# The suite leaves nothing running: no daemon, supervisor or QEMU of a test (they all name
# the build tree or a test's temp folder on their command line).
leftover=0
stray=$(pgrep -af -- "$PWD/build|/tmp/vmm-[a-z]+\.|/tmp/dvmm-" || true)
if [ -n "$stray" ]; then
  echo "not ok - processes left behind by the tests:"; echo "$stray"
  leftover=1; rc=1
else
  echo "ok - no process left behind by the tests"
fi
# One closing line any CI can read.
python3 - "$leftover" "${logs[@]}" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
counts["FAIL" if sys.argv[1] == "1" else "OK"] += 1  # the leftover-process check
for log in sys.argv[2:]:
    for line in open(log):
        r = json.loads(line)["result"]
        key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
        counts[key] += 1
# A CI may show only the tail of this output: each failed test's assertions are repeated here,
# after every log line, so the tail names what failed.
for log in sys.argv[2:]:
    for line in open(log):
        r = json.loads(line)
        if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
            continue
        stdout = (r.get("stdout") or "").splitlines()
        out = stdout + (r.get("stderr") or "").splitlines()
        hits = [i for i, l in enumerate(out) if "FAILED:" in l or "ERROR: AddressSanitizer" in l or "runtime error:" in l]
        print(f"failed: {r['name']} ({r['result']}, exit {r.get('returncode')})")
        shown = set()
        for i in hits[:5]:
            for j in range(max(0, i - 12), min(len(out), i + 8)):
                if j not in shown:
                    shown.add(j)
                    print("  | " + out[j][:300])
        if not hits:
            for l in stdout[-20:]:
                print("  | " + l[:300])
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $rc
