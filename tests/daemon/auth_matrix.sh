#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every route of the management server x {no credential, wrong token, right token, basic ok,
# basic wrong, token in the query on POST}: 401 with the Basic challenge, or let through.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-auth.XXXXXX)
trap cleanup EXIT
port=$(free_port)
python3 -W ignore -c 'import crypt; print("alice:" + crypt.crypt("wonderland", crypt.mksalt(crypt.METHOD_BLOWFISH)))' > "$tmp/htpasswd"
{ plain_config "$port"; cat <<TOML
[auth]
enabled = true
tokens = ["s3cret"]
htpasswd_file = "htpasswd"
TOML
} > "$tmp/vmm.toml"
mkdir -p "$tmp/images"
start_daemon "$tmp/vmm.toml" "$tmp/log"
base="http://127.0.0.1:$port"
check 'wait_for "curl -s -o /dev/null $base/prpc/Version" 20' "daemon up"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# The health probe alone needs no credential, and tells nothing secret.
check '[ "$(code "$base/health")" = 200 ] && curl -s "$base/health" | grep -q "\"status\":\"ok\""' "GET /health without a credential -> 200 ok"
check '! curl -s "$base/health" | grep -q -e s3cret -e alice -e "$tmp"' "/health shows no token, user or path"
check '[ "$(code -X POST "$base/health")" = 401 ]' "only GET /health is open"
# route: METHOD PATH
routes=("GET /" "GET /prpc/Version" "POST /prpc/Status?json" "POST /guest/Info?json" "GET /logs?id=nope" "GET /metrics"
        "GET /events?follow=false")
for r in "${routes[@]}"; do
  m=${r%% *} p=${r#* }
  sep=$([[ $p == *\?* ]] && echo '&' || echo '?')
  data=(); [ "$m" = POST ] && data=(-X POST -d '{"id":"x"}')
  check '[ "$(code "${data[@]}" "$base$p")" = 401 ]' "$r: no credential -> 401"
  check '[ "$(code "${data[@]}" -H "Authorization: Bearer wrong" "$base$p")" = 401 ]' "$r: wrong token -> 401"
  check '[ "$(code "${data[@]}" -H "Authorization: Bearer s3cret" "$base$p")" != 401 ]' "$r: right token -> through"
  check '[ "$(code "${data[@]}" -H "X-Admin-Token: s3cret" "$base$p")" != 401 ]' "$r: X-Admin-Token -> through"
  check '[ "$(code "${data[@]}" -u alice:wonderland "$base$p")" != 401 ]' "$r: basic ok -> through"
  check '[ "$(code "${data[@]}" -u alice:wrong "$base$p")" = 401 ]' "$r: basic wrong -> 401"
  if [ "$m" = POST ]; then
    check '[ "$(code "${data[@]}" "$base$p${sep}token=s3cret")" = 401 ]' "$r: token in query on POST -> 401"
  else
    check '[ "$(code "$base$p${sep}token=s3cret")" != 401 ]' "$r: token in query on GET -> through"
  fi
done
check 'curl -sI $base/ | grep -qi "^WWW-Authenticate: Basic realm=\"dstack-vmm API\""' "401 carries the Basic challenge"
check 'curl -sI $base/ | grep -qi "^X-App-Version: v0.6.0"' "401 carries X-App-Version"
check '[ "$(curl -s "$base/prpc/GetInfo?id=x&token=s3cret")" = "{\"found\":false,\"info\":null}" ]' "token stripped before decoding"
check '[ "$(code -H "Authorization: Bearer s3cret" "$base/logs?id=nope")" = 404 ]' "unknown VM in /logs is 404"
exit $fail
