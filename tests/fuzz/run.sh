#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh EXE NAME SEEDS SECONDS: fuzz NAME for SECONDS from the committed seeds, keeping what
# it finds in a corpus under the build tree (never in the repository). Prints executions and
# corpus size (in build-asan/meson-logs/testlog.txt); a crash fails the test and leaves the
# reproducer beside the corpus.
set -u
exe=$1 name=$2 seeds=$3 seconds=$4
work="$(dirname "$exe")/fuzz-work/$name"
mkdir -p "$work/corpus" "$work/artifacts"
# A fixed seed keeps CI runs alike (FUZZ_SEED=0 for a random one when hunting by hand).
"$exe" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" > "$work/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
echo "fuzz $name: ${execs:-?} executions in ${seconds}s, corpus $(ls "$work/corpus" | wc -l) inputs (seeds $(ls "$seeds" | wc -l))"
[ $rc -eq 0 ] || { tail -60 "$work/log"; ls "$work/artifacts"; }
[ $rc -eq 0 ] || exit 1  # libFuzzer exits 77 on a crash, which meson would count as a skip
