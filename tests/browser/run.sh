#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The browser suite: installs Debian's chromium and npm's playwright-core (from the committed
# lockfile) where missing, starts a daemon with the test guest and a stand-in KMS, and drives
# the console (console_test.mjs). Skips (77) with a reason only when no browser can be had.
#   run.sh DSTACK_VMM SOURCE_ROOT BUILD_ROOT TEST_KMS
set -u
vmm=$(realpath "$1") src=$2 build=$(realpath "$3") kms=$(realpath "$4")
here=$(cd "$(dirname "$0")" && pwd)
source "$src/tests/daemon/lib.sh"
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }
fi
[ -x "$chromium" ] || { echo "# SKIP: no chromium at $chromium and it could not be installed (apt-get install chromium)"; exit 77; }
deps=$build/browser-deps
if [ ! -f "$deps/node_modules/playwright-core/package.json" ] || ! cmp -s "$here/package-lock.json" "$deps/package-lock.json"; then
  command -v npm >/dev/null || { echo "# SKIP: npm is missing, so playwright-core cannot be installed"; exit 77; }
  mkdir -p "$deps" && cp "$here/package.json" "$here/package-lock.json" "$deps/"
  (cd "$deps" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || { echo "# SKIP: npm ci of playwright-core failed"; exit 77; }
fi
tmp=$(mktemp -d /tmp/vmm-browser.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
"$kms" serve "$tmp" > "$tmp/kms.port" & pids+=($!)
check 'wait_for "[ -s $tmp/kms.port ]" 10' "stand-in KMS up"
port=$(free_port)
guest_config "$port" "$image" "kms_url = \"http://127.0.0.1:$(cat "$tmp/kms.port")\"" > "$tmp/vmm.toml"
start_daemon "$tmp/vmm.toml" "$tmp/log"
check 'wait_for "curl -sf -o /dev/null http://127.0.0.1:$port/prpc/Version" 20' "daemon up"
aport=$(free_port)
mkdir -p "$tmp/auth"
{ plain_config "$aport"; printf '[auth]\nenabled = true\ntokens = ["s3cret"]\n'; } > "$tmp/auth/vmm.toml"
start_daemon "$tmp/auth/vmm.toml" "$tmp/auth/log"
check 'wait_for "curl -s -o /dev/null http://127.0.0.1:$aport/" 20' "a daemon with auth up"
out=$build/browser-screenshots
rm -rf "$out" && mkdir -p "$out"
PLAYWRIGHT_DIR=$deps/node_modules CHROMIUM=$chromium node "$here/console_test.mjs" "http://127.0.0.1:$port" "$out" \
  "$(basename "$image")" "$(free_port)" "$(free_port)" "$kms" "$tmp" "http://127.0.0.1:$aport" || fail=1
for s in table deploy-dialog details logs; do check '[ -s "$out/$s.png" ]' "screenshot $s.png"; done
exit $fail
