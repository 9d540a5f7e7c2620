#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what is missing, build, and run every test suite. Exit status is the tests'.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
rc=0
meson test -C build --no-rebuild --print-errorlogs "$@" > build/test-output.txt 2>&1 || rc=$?
grep -E '^ *[0-9]+/[0-9]+ ' build/test-output.txt || true
[ $rc -eq 0 ] || cat build/test-output.txt
# One closing line any CI can read.
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
    counts[key] += 1
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $rc
