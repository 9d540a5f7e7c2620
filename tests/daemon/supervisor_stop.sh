#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The supervisor ends: after POST /shutdown (with a body, as clients send it) and on SIGTERM,
# within a deadline, removing its socket. It used to hang in its signal thread after
# /shutdown and ignore SIGTERM from then on.
set -u
sup=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-sup.XXXXXX)
trap cleanup EXIT
gone() { ! kill -0 "$1" 2>/dev/null; }

"$sup" --uds "$tmp/a.sock" > "$tmp/a.log" 2>&1 & a=$!; pids+=($a)
check 'wait_for "curl -sf --unix-socket $tmp/a.sock http://x/ping >/dev/null" 10' "supervisor answers"
check 'curl -s --unix-socket "$tmp/a.sock" -X POST -H "Content-Type: application/json" -d "{}" http://x/shutdown | grep -q "\"data\":null"' "/shutdown is accepted"
check 'wait_for "gone $a" 10 && [ ! -e "$tmp/a.sock" ]' "the supervisor exits after /shutdown and removes its socket"

"$sup" --uds "$tmp/b.sock" > "$tmp/b.log" 2>&1 & b=$!; pids+=($b)
check 'wait_for "curl -sf --unix-socket $tmp/b.sock http://x/ping >/dev/null" 10' "a second supervisor answers"
kill -TERM "$b"
check 'wait_for "gone $b" 10 && [ ! -e "$tmp/b.sock" ]' "the supervisor exits on SIGTERM"
exit $fail
