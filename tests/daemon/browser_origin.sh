#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Other websites cannot drive the daemon: what a page the operator visits can make the browser
# send (an <img> GET, a form or text POST, a fetch with its Origin, a DNS-rebound Host) is
# refused with auth off, as ./scripts/run.sh serves; the console and JSON clients still work.
# The console's pages carry a CSP and frame denial, and serve every asset themselves.
set -u
vmm=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-origin.XXXXXX)
trap cleanup EXIT
port=$(free_port)
tiny_image "$tmp/images"
{ echo 'node_name = "<script>alert(1)</script>"'; echo 'allowed_hosts = ["vmm.example.org"]'; plain_config "$port"
  printf '[cvm]\nplatform = "none"\naccel = "tcg"\n'; } > "$tmp/vmm.toml"
base="http://127.0.0.1:$port"
code() { curl -s -o "$tmp/body" -w '%{http_code}' "$@"; }
vms() { curl -s "$base/prpc/Status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
create='{"name":"x","image":"img","compose_file":"{\"manifest_version\":2,\"name\":\"x\",\"runner\":\"r\"}","vcpu":1,"memory":256,"disk_size":1,"stopped":true}'
(cd "$tmp" && exec "$vmm" -c vmm.toml > "$tmp/log" 2>&1) & pids+=($!)
check 'wait_for "curl -sf -o /dev/null $base/prpc/Version" 20' "daemon up, auth off"

check '[ "$(code -X POST -H "Content-Type: text/plain" "$base/prpc/CreateVm?json" -d "$create")" = 415 ] && [ "$(vms)" = 0 ]' \
  "a text/plain POST (a page's simple request) creates nothing"
check '[ "$(code -X POST "$base/prpc/CreateVm?json" -d "$create")" = 415 ] && grep -q "Content-Type: application/json" "$tmp/body"' \
  "a form POST is refused, saying which content type to send"
id=$(curl -s -X POST -H 'Content-Type: application/json' "$base/prpc/CreateVm?json" -d "$create" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check '[ -n "$id" ] && [ "$(vms)" = 1 ]' "a JSON POST creates (vmmctl, upstream's CLI, the console)"
check '[ "$(code "$base/prpc/RemoveVm?id=$id")" = 405 ] && [ "$(vms)" = 1 ]' "a GET of RemoveVm (an <img> tag) removes nothing"
check '[ "$(code -X POST -H "Content-Type: application/json" -H "Origin: http://attacker.example" "$base/prpc/RemoveVm?json" -d "{\"id\":\"$id\"}")" = 403 ] && [ "$(vms)" = 1 ]' \
  "a fetch from another origin is refused"
check '[ "$(code -H "Host: attacker.example:$port" "$base/prpc/Status")" = 403 ]' "a DNS-rebound Host cannot read the VM list"
check '[ "$(code -H "Host: vmm.example.org" "$base/prpc/Status")" = 200 ] && [ "$(code -H "Host: localhost:$port" "$base/prpc/Status")" = 200 ]' \
  "allowed_hosts and localhost are served"
check '[ "$(code -H "Sec-Fetch-Site: cross-site" -H "Sec-Fetch-Mode: no-cors" "$base/prpc/Status")" = 403 ]' "a cross-site fetch is refused"
check '[ "$(code -H "Sec-Fetch-Site: cross-site" -H "Sec-Fetch-Mode: navigate" "$base/")" = 200 ]' "a link to the console from elsewhere opens it"
curl -s -D "$tmp/preflight" -o /dev/null -X OPTIONS -H "Origin: http://attacker.example" -H "Access-Control-Request-Method: POST" "$base/prpc/CreateVm"
check '! grep -qi "^Access-Control-Allow" "$tmp/preflight"' "no CORS grant to a preflight"
check '[ "$(code -X POST -H "Content-Type: application/json" -H "Origin: $base" "$base/prpc/RemoveVm?json" -d "{\"id\":\"$id\"}")" = 200 ]' \
  "the console's own origin may remove"

curl -s -D "$tmp/headers" -o "$tmp/page" "$base/"
check 'grep -qi "^Content-Security-Policy: default-src .none.; script-src .self. .sha256-" "$tmp/headers" && grep -qi "frame-ancestors .none." "$tmp/headers"' \
  "the console has a CSP (its one inline script by hash) and may not be framed"
check 'grep -qi "^X-Frame-Options: DENY" "$tmp/headers" && grep -qi "^Referrer-Policy: no-referrer" "$tmp/headers"' "X-Frame-Options: DENY"
curl -s -D "$tmp/docs-headers" -o /dev/null "$base/api-docs/docs"
check 'grep -qi "^X-Frame-Options: DENY" "$tmp/docs-headers" && grep -qi "^Content-Security-Policy: " "$tmp/docs-headers"' \
  "the API docs page may not be framed either"
# An API answer carries upstream's headers and nosniff, and none that only a document needs.
curl -s -D "$tmp/api-headers" -o /dev/null -X POST "$base/prpc/Version?json" -d '{}'
check 'grep -qi "^X-App-Version: v" "$tmp/api-headers" && grep -qi "^X-Accel-Buffering: no" "$tmp/api-headers" &&
       grep -qi "^X-Content-Type-Options: nosniff" "$tmp/api-headers" && ! grep -qi "^X-Frame-Options\|^Referrer-Policy" "$tmp/api-headers"' \
  "an API answer has upstream's headers and no document-only ones"
check 'grep -q "<title>&lt;script&gt;alert(1)&lt;/script&gt; | dstack-vmm</title>" "$tmp/page" && ! grep -q "<script>alert" "$tmp/page"' \
  "node_name goes into the page escaped"
python3 - "$tmp/page" "$tmp/headers" <<'PY' && ok=1 || ok=0
import base64, hashlib, re, sys
page, headers = open(sys.argv[1]).read(), open(sys.argv[2]).read()
script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
want = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
sys.exit(0 if want in headers else 1)
PY
check '[ $ok = 1 ]' "the CSP's hash is the inline script's"
curl -s -o "$tmp/docs" "$base/api-docs/docs"
check '! grep -q "https\?://" "$tmp/docs" && [ "$(code "$base/res/api_docs.js")" = 200 ] && ! grep -q "https\?://" "$tmp/body"' \
  "the API docs load nothing from other sites"
exit $fail
