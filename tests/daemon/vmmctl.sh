#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vmmctl against the real daemon and the real test guest: every command, --json parsed, each
# exit code provoked, the size and port syntaxes, the compose golden, env encryption to a KMS
# key (opened again with the KMS's private key), and apply's plans.
#   vmmctl.sh DSTACK_VMM SOURCE_ROOT BUILD_ROOT VMMCTL TEST_KMS
set -u
vmm=$(realpath "$1") src=$2 build=$3 ctl=$(realpath "$4") kms=$(realpath "$5")
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/vmm-ctl.XXXXXX)
trap cleanup EXIT
image=$(guest_image "$src" "$build")
img=$(basename "$image")
# The CLI's own files (config, whitelist) and the daemons' discovery files stay in the test.
export HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
unset DSTACK_VMM_URL DSTACK_VMM_TOKEN DSTACK_VMM_AUTH_USER DSTACK_VMM_AUTH_PASSWORD
port=$(free_port)
guest_config "$port" "$image" > "$tmp/vmm.toml"
(cd "$tmp" && exec "$vmm" -c vmm.toml > log 2>&1) & pids+=($!)
v() { "$ctl" "$@"; }
js() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }  # js EXPR: d is the document
rc() { "$ctl" "$@" > "$tmp/out" 2> "$tmp/err"; echo $?; }
data=$src/tests/data/compose

# Help: the whole surface reads, and every command answers --help.
check '[ $(rc --help) = 0 ] && grep -q "Exit codes: 0 ok, 1 usage" $tmp/out' "--help documents the exit codes"
allhelp=0
for c in lsvm info start stop remove resize logs compose deploy update-env update-user-config update-app-compose \
         update-ports update lsimage lsgpu image guest host reload version meta vmm kms apply health; do
  [ "$(rc $c --help)" = 0 ] && grep -q Usage "$tmp/out" || { allhelp=1; echo "# $c --help failed"; }
done
check '[ $allhelp = 0 ]' "every command answers --help"

# 4: unreachable, in one line.
check '[ $(rc --url http://127.0.0.1:1 lsvm) = 4 ] && [ $(wc -l < $tmp/err) = 1 ] && grep -q "cannot reach the daemon at http://127.0.0.1:1" $tmp/err' "an unreachable daemon: exit 4 and one line"
check '[ $(rc --url unix:$tmp/nope.sock --json lsvm) = 4 ] && js "d[\"code\"]" < $tmp/err | grep -qx unavailable' "--json errors are JSON on stderr"

# Discovery: with no --url, the only running daemon is found.
check 'wait_for "v vmm ls --json 2>/dev/null | grep -q 127.0.0.1:$port" 20' "vmm ls finds the daemon from its discovery file"
check '[ "$(v lsvm --json)" = "[]" ]' "no --url: the only running daemon is used (lsvm --json: [])"
did=$(v vmm ls --json | js 'd[0]["id"]')
check 'v vmm switch ${did:0:8} > /dev/null && v vmm ls --json | js "d[0][\"active\"]" | grep -qx True' "vmm switch marks the daemon active"
check '[ $(rc vmm switch zzzz) = 2 ]' "vmm switch to an unknown id: exit 2"
export DSTACK_VMM_URL=http://127.0.0.1:$port

# 1: usage.
check '[ $(rc deploy --name x) = 1 ]' "a missing required flag: exit 1"
check '[ $(rc lsvm --bogus) = 1 ]' "an unknown flag: exit 1"
printf '{"manifest_version":2,"name":"t","runner":"docker-compose"}' > "$tmp/plain.json"
deploy() { rc deploy --name "$1" --image "$img" --compose "$tmp/plain.json" --disk 1 "${@:2}"; }
check '[ $(deploy bad --memory 1.3M) = 1 ] && grep -q "memory size .1.3M.: is not a whole number of MB" $tmp/err' "--memory 1.3M: exit 1, says why"
check '[ $(deploy bad --memory 2X) = 1 ] && grep -q "unknown unit" $tmp/err' "--memory 2X: exit 1"
check '[ $(deploy bad --disk 512M) = 1 ]' "--disk 512M: exit 1"
check '[ $(deploy bad --port tcp:80) = 1 ] && grep -q "port spec .tcp:80." $tmp/err' "--port tcp:80: exit 1"
check '[ $(deploy bad --port sctp:1:2) = 1 ] && grep -q "tcp or udp" $tmp/err' "--port sctp:1:2: exit 1"
check '[ $(deploy bad --port tcp:1.2.3:80:80) = 1 ]' "--port with a bad address: exit 1"
check '[ $(rc --auth-user u lsvm) = 1 ] && grep -q "both --auth-user and --auth-password" $tmp/err' "half a Basic credential: exit 1"
check '[ $(deploy bad --net bridge --stopped) = 1 ] && grep -q "bridge networking requested but no bridge is configured" $tmp/err' \
  "--net bridge on a node without a bridge is refused at create (exit 1), not at start"
if [ "$(cat /sys/kernel/mm/hugepages/*/nr_hugepages 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')" = 0 ]; then
  check '[ $(deploy bad --hugepages --stopped) = 3 ] && grep -q "hugepages: the host has no huge pages reserved" $tmp/err' \
    "--hugepages on a host without huge pages is refused at create, saying how to reserve them (exit 3)"
fi
check '[ "$(v lsvm --json)" = "[]" ]' "no bad deploy created anything"
check '[ $(rc health) = 0 ] && grep -q "^healthy" $tmp/out && grep -q "supervisor: ok" $tmp/out' "health: exit 0, each check ok"
check '[ $(rc --json health) = 0 ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"status\"] == \"ok\" and d[\"checks\"][\"state_folder\"][\"ok\"]" $tmp/out' "health --json: the document"
check '[ $(rc --json host check) = 0 ] && python3 -c "import json,sys; c={x[\"name\"]: x for x in json.load(open(sys.argv[1]))[\"checks\"]}; assert c[\"vsock\"][\"level\"] == \"warn\" and \"absent\" in c[\"vsock\"][\"detail\"], c[\"vsock\"]; assert c[\"kvm\"][\"level\"] in (\"ok\", \"warn\") and c[\"kvm\"][\"detail\"], c[\"kvm\"]; assert c[\"qemu\"][\"level\"] == \"ok\"" $tmp/out' "host check: vsock absent (a warning: user-net is used), KVM as its probe found it, QEMU found"
check 'v host check | grep -q "^WARN  vsock: .* is absent; guests use the user-net channel"' "host check: one line per check, with the fix"

# compose: byte for byte as upstream writes it, and the hash of those bytes.
check '[ $(rc compose --name shop --docker-compose $data/docker-compose.yaml --prelaunch-script $data/prelaunch.sh --kms --gateway --key-provider kms --key-provider-id abcd --public-logs --env-file $data/app.env --secure-time --swap 2G --event-log-version 2 --output $tmp/app.json) = 0 ]' "compose with every option"
check 'cmp -s $tmp/app.json $src/tests/data/golden/app-compose.json' "compose output equals the golden file byte for byte"
check 'grep -qx "Compose hash: $(sha256sum < $tmp/app.json | cut -d" " -f1)" $tmp/out' "compose prints the sha256 of the file"
check 'grep -qx "App compose file created at: $tmp/app.json" $tmp/out' "compose says where it wrote"
check '[ $(rc compose --name x --docker-compose $data/docker-compose.yaml --env-file $data/app.env --output $tmp/x.json) = 1 ] && grep -q "needs --kms" $tmp/err' "compose --env-file without --kms: exit 1"
check '[ $(rc compose --name x --docker-compose $tmp/missing.yaml --output $tmp/x.json) = 1 ]' "compose with a missing docker-compose file: exit 1"

# Env encryption to a KMS's key, signer checked.
python_kms_dir=$tmp/kms; mkdir -p "$python_kms_dir"
"$kms" serve "$python_kms_dir" > "$tmp/kms.port" & pids+=($!)
check 'wait_for "[ -s $tmp/kms.port ]" 10' "test KMS up"
kurl=http://127.0.0.1:$(cat "$tmp/kms.port")
envdeploy() { rc deploy --name "$1" --image "$img" --compose "$tmp/app.json" --disk 1 --memory 256 --stopped --env-file "$data/app.env" --kms-url "$kurl" "${@:2}"; }
check '[ $(envdeploy e0) = 3 ] && grep -q "not in ~/.dstack-vmm/kms-whitelist.json" $tmp/err && grep -q "vmmctl kms add 0x" $tmp/err' "an unlisted KMS signer, no terminal, no --yes: exit 3 and how to trust it"
check '[ "$(v lsvm --json)" = "[]" ]' "nothing was deployed to an untrusted key"
check '[ $(rc --json kms add $(cat $python_kms_dir/signer.pub)) = 0 ] && [ "$(v kms list)" = "$(cat $python_kms_dir/signer.pub)" ]' "kms add, kms list"
check '[ $(envdeploy e1 --json) = 0 ]' "deploy --env-file to a whitelisted signer"
e1=$(js 'd["id"]' < "$tmp/out")
check '$kms decrypt $python_kms_dir $tmp/vms/$e1/shared/.encrypted-env | grep -qx "{\"env\":\[{\"key\":\"API_KEY\",\"value\":\"s3cr=t\"},{\"key\":\"DEBUG\",\"value\":\"1\"}\]}"' "the stored env opens with the KMS's private key (round trip)"
check '[ $(rc kms remove $(cat $python_kms_dir/signer.pub)) = 0 ] && [ -z "$(v kms list)" ]' "kms remove"
check '[ $(envdeploy e2 --yes) = 0 ] && grep -q "trusting signer" $tmp/err' "--yes trusts an unlisted signer, with a warning"
check '[ $(rc deploy --name e3 --image $img --compose $tmp/plain.json --stopped --env-file $data/app.env --kms-url $kurl) = 1 ] && grep -q "does not enable the KMS" $tmp/err' "--env-file with a compose without KMS: exit 1"
check '[ $(rc update-env $e1 --env-file $data/app.env --kms-url $kurl --yes --json) = 0 ]' "update-env"
for id in $e1 $(v lsvm --json | js '" ".join(v["id"] for v in d if v["name"]=="e2")'); do v remove "$id" > /dev/null; done

# A real guest: deploy --wait, lsvm, info, logs, guest, conflicts, stop, updates, start, remove.
web=$(free_port) web2=$(free_port) web3=$(free_port)
# A follower of /events from before the deploy: it must see the whole life of g1.
v events -f --json > "$tmp/events.follow" 2> "$tmp/events.err" & pids+=($!)
follower=$!
check '[ $(deploy g1 --memory 256 --port tcp:$web:80 --wait --json) = 0 ] && js "d[\"status\"]" < $tmp/out | grep -qx running' "deploy --wait --json: running"
g1=$(js 'd["id"]' < "$tmp/out")
check '[ ! -s $tmp/err ]' "no progress noise when stdout is not a terminal"
check 'v lsvm --json | js "[(v[\"id\"],v[\"name\"],v[\"status\"]) for v in d]" | grep -q "$g1.*g1.*running"' "lsvm --json: id, name, status"
check 'v lsvm -v | grep -q "$g1.*g1.*running.*256"' "lsvm -v shows resources"
check 'v info $g1 --json | js "d[\"configuration\"][\"ports\"][0][\"host_port\"]" | grep -qx $web' "info --json: the port"
check 'wait_for "v logs $g1 -n 200 | grep -q E2E-GUEST-READY" 120' "logs -n 200 shows the guest's boot lines"
check '[ $(v logs $g1 -n 1 | wc -l) -le 2 ]' "logs -n 1 prints the last line only"
# kinds KIND...: g1's journal entries (JSON lines on stdin) as "kind[/event:detail]" words.
kinds() { python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e.get("vm_id")==sys.argv[1]: print(e["kind"]+("/"+e["event"]+":"+e["detail"] if "event" in e else ""))' "$g1"; }
milestones='created started guest/boot.progress:network up guest/boot.progress:done'
ordered() { kinds | grep -v "test.sealing_key" | tr '\n' ' ' | grep -q "^created started guest/boot.progress:network up guest/boot.progress:done"; }
check 'wait_for "ordered < $tmp/events.follow" 10' "events -f: g1 created, started, then the guest's boot milestones in order"
check 'v events --vm $g1 --json | ordered' "events --vm: the same from the journal"
second=$(v events --vm "$g1" --json | sed -n 2p | js 'd["seq"]')
check '[ "$(v events --vm $g1 --since $second --json | kinds | head -1)" = "guest/boot.progress:network up" ]' "events --since SEQ resumes after that entry"
check 'curl -s -H "Last-Event-ID: $second" "http://127.0.0.1:$port/events?follow=false&vm=$g1" | grep "^data:" | head -1 | grep -q "network up"' "/events resumes from Last-Event-ID"
check 'curl -s -H "Last-Event-ID: 5" "http://127.0.0.1:$port/events?follow=false" | head -1 | grep -q "\"kind\":\"gap\""' "a Last-Event-ID older than the journal: a gap entry first"
check '[ $(rc events --vm ../x) = 1 ] && grep -q "invalid vm" $tmp/err' "events --vm with a bad id: exit 1"
check 'v events | grep -q "  $g1  guest boot.progress: done"' "events prints one readable line per entry"
# /metrics, read strictly as Prometheus reads it.
curl -s "http://127.0.0.1:$port/metrics" > "$tmp/metrics.txt"
check 'python3 $src/tests/daemon/prom_text.py < $tmp/metrics.txt > $tmp/metrics.json' "/metrics parses as Prometheus text, every family typed, histograms consistent"
metric() { python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1])).get(sys.argv[2], -1)))' "$tmp/metrics.json" "$1"; }
check '[ "$(metric "dstack_vmm_vms{status=running}")" = "$(v lsvm --json | js "sum(v[\"status\"]==\"running\" for v in d)")" ]' "/metrics: running VMs as lsvm counts them"
check '[ "$(metric "dstack_vmm_host_api_events_total{event=boot.progress}")" -ge 2 ]' "/metrics: the guest's boot.progress notifications counted"
check '[ "$(metric "dstack_vmm_http_request_duration_seconds_count{route=/prpc/Status}")" -ge 1 ] && [ "$(metric "dstack_vmm_cids_total")" -gt 0 ]' "/metrics: Status latency histogram, CID pool"
check 'v guest $g1 info | js "d[\"version\"]" | grep -q dstack-test-agent' "guest info answers from the guest agent"
check 'v guest $g1 sysinfo | js "d[\"kernel_version\"]" | grep -q "^6\."' "guest sysinfo"
check '[ $(deploy g2 --memory 256 --stopped --port tcp:$web:80) = 3 ] && grep -q "conflicts with VM $g1" $tmp/err' "a port another VM holds: exit 3"
check '[ $(rc resize $g1 --memory 512M) = 3 ] && grep -q "stopped before resize" $tmp/err' "resizing a running VM: exit 3"
check '[ $(rc resize $g1) = 1 ]' "resize with nothing to change: exit 1"
check 'script -qec "$ctl stop $g1 --wait" /dev/null | grep -q "$(printf "\r\033\[K")g1: "' "stop --wait on a terminal shows a progress line"
check 'v info $g1 --json | js "d[\"status\"]" | grep -qx stopped' "stop (graceful) reached stopped"
check 'wait_for "kinds < $tmp/events.follow | grep -qx stopped" 10 && kinds < $tmp/events.follow | grep -qx "guest/shutdown.progress:powering off"' "the follower saw the guest power off, then stopped"
kill "$follower"
check '[ $(rc resize $g1 --memory 512M --disk 2G --json) = 0 ] && v info $g1 --json | js "(d[\"configuration\"][\"memory\"], d[\"configuration\"][\"disk_size\"])" | grep -qx "(512, 2)"' "resize a stopped VM: memory 512M, disk 2G"
check '[ $(rc resize $g1 --disk 1) = 1 ] && grep -qi "shrink" $tmp/err' "shrinking the disk: exit 1"
check '[ $(rc update-ports $g1 --port tcp:$web2:80 --port tcp:0.0.0.0:$web3:22) = 0 ] && v info $g1 --json | js "sorted(p[\"host_address\"]+\":\"+str(p[\"host_port\"]) for p in d[\"configuration\"][\"ports\"])" | grep -q "0.0.0.0:$web3.*127.0.0.1:$web2"' "update-ports"
check '[ $(rc update-ports $g1 --port udp:$web2:53) = 1 ] && grep -q "not allowed for udp" $tmp/err' "update-ports outside the configured range: exit 1"
printf 'timezone=UTC\n' > "$tmp/user.conf"
check '[ $(rc update-user-config $g1 $tmp/user.conf) = 0 ] && v info $g1 --json | js "d[\"configuration\"][\"user_config\"]" | grep -q timezone' "update-user-config"
printf '{"manifest_version":2,"name":"t2","runner":"docker-compose"}' > "$tmp/plain2.json"
check '[ $(rc update-app-compose $g1 $tmp/plain2.json --json) = 0 ] && js "d[\"app_id\"]" < $tmp/out | grep -qx "$(sha256sum < $tmp/plain2.json | cut -c1-40)"' "update-app-compose returns the new app id"
check '[ $(rc update $g1 --vcpu 2 --no-ports --json) = 0 ] && v info $g1 --json | js "(d[\"configuration\"][\"vcpu\"], d[\"configuration\"][\"ports\"])" | grep -qx "(2, \[\])"' "update --vcpu --no-ports"
check '[ $(rc update-app-compose $g1 $tmp/missing.json) = 1 ]' "update-app-compose with a missing file: exit 1"
check '[ $(rc start $g1 --wait running --json) = 0 ] && js "d[\"status\"]" < $tmp/out | grep -qx running' "start --wait running"
check '[ $(rc stop -f $g1 --wait --json) = 0 ] && js "d[\"status\"]" < $tmp/out | grep -qx stopped' "stop -f --wait"

# 2: not found.
check '[ $(rc info no-such-vm) = 2 ]' "info of an unknown VM: exit 2"
check '[ $(rc stop no-such-vm -f) = 2 ]' "stop of an unknown VM: exit 2"
check '[ $(rc logs no-such-vm) = 2 ]' "logs of an unknown VM: exit 2"
check '[ $(rc image rm no-such-image) = 2 ]' "image rm of an unknown image: exit 2"
check '[ $(rc deploy --name x --image no-such-image --compose $tmp/plain.json) = 2 ]' "deploy of an unknown image: exit 2"

# Host-wide commands.
check 'v lsimage --json | js "[i[\"name\"] for i in d]" | grep -q "$img"' "lsimage --json"
check 'v lsimage | grep -q "^$img "' "lsimage table"
check '[ "$(v lsgpu --json)" = "[]" ]' "lsgpu --json (no GPUs here)"
check 'v image ls --json | js "d[\"images\"][0][\"name\"]" | grep -qx "$img"' "image ls --json"
check '[ $(rc image pull some-tag) = 3 ] && grep -q "registry is not configured" $tmp/err' "image pull with no registry: exit 3"
check 'v host info --json | js "d[\"version\"][\"version\"]" | grep -qx 0.6.0' "host info --json"
check 'v reload --json | js "d[\"updated\"] >= 1" | grep -qx True' "reload --json counts the VM"
check 'v version | js "d[\"version\"]" | grep -qx 0.6.0' "version"
check '[ $(rc remove $g1 --json) = 0 ] && wait_for "[ \"\$(v lsvm --json)\" = \"[]\" ]" 60' "remove: the VM goes away"

# apply: create, then nothing, then a plan that changes one port, --dry-run changing nothing.
cp "$tmp/plain.json" "$tmp/apply-compose.json"
cat > "$tmp/vms.toml" <<TOML
[[vm]]
name = "ap1"
image = "$img"
memory = "256M"
disk = "1G"
compose = "apply-compose.json"
ports = ["tcp:$web:80"]

[[vm]]
name = "ap2"
image = "$img"
memory = 256
disk = 1
compose = "apply-compose.json"
stopped = true
TOML
check '[ $(rc apply $tmp/vms.toml) = 0 ] && grep -qx "+ create ap1" $tmp/out && grep -qx "+ create ap2" $tmp/out' "apply creates what is missing"
check 'v lsvm --json | js "sorted((v[\"name\"], v[\"status\"]) for v in d)" | grep -qx "\[(.ap1., .running.), (.ap2., .stopped.)\]"' "ap1 runs, ap2 stays stopped"
check '[ $(rc apply $tmp/vms.toml --dry-run --json) = 0 ] && js "[s[\"action\"] for s in d]" < $tmp/out | grep -qx "\[.none., .none.\]"' "apply again: an empty plan"
check '[ $(rc apply $tmp/vms.toml) = 0 ] && grep -qx "= ap1 unchanged" $tmp/out' "a second apply changes nothing"
sed -i "s/tcp:$web:80/tcp:$web2:80/" "$tmp/vms.toml"
check '[ $(rc apply $tmp/vms.toml --dry-run) = 0 ] && grep -q "~ update ap1 .*restarting it" $tmp/out && grep -qx "    ports: tcp:127.0.0.1:$web:80 -> tcp:127.0.0.1:$web2:80" $tmp/out' "the plan changes one port, with a restart"
ap1=$(v lsvm --json | js '[v["id"] for v in d if v["name"]=="ap1"][0]')
check 'v info $ap1 --json | js "d[\"configuration\"][\"ports\"][0][\"host_port\"]" | grep -qx $web' "--dry-run changed nothing"
check '[ $(rc apply $tmp/vms.toml --stop-timeout 30) = 0 ] && v info $ap1 --json | js "d[\"configuration\"][\"ports\"][0][\"host_port\"]" | grep -qx $web2' "apply updated the port"
check 'v info $ap1 --json | js "d[\"status\"]" | grep -qx running' "and ap1 runs again"
# The launch record of ap1's boot: the argv that runs, word for word, and the files' hashes.
qpid=$(cat "$tmp/vms/$ap1/qemu.pid")
v info "$ap1" --launch --json > "$tmp/launch.json"
check 'python3 -c "import json,sys; a=json.load(open(sys.argv[1]))[-1][\"argv\"]; c=open(\"/proc/%s/cmdline\" % sys.argv[2],\"rb\").read().split(b\"\\0\")[:-1]; sys.exit(0 if [x.encode() for x in a] == c else 1)" $tmp/launch.json $qpid' "info --launch --json: the argv QEMU runs with, word for word"
kernel_sum=$(sha256sum "$image/$(js 'd["kernel"]' < "$image/metadata.json")" | cut -d" " -f1)
check 'wait_for "v info $ap1 --launch | grep -q \"kernel .* sha256:$kernel_sum\"" 20' "info --launch: the kernel's sha256"
# A QEMU that dies under a VM meant to run: a failed boot, shown with its status and serial tail.
kill -9 "$qpid"
check 'wait_for "v info $ap1 | grep -q \"killed by signal 9 after\"" 20 && v info $ap1 | grep -A30 "^Failed boots (1 QEMU exit(s) and 0 kernel panic(s)" | grep -q "    | "' "info: the failed boot, its signal and the serial log's last lines"
# A guest whose kernel panics at boot reboots inside its QEMU: only its console tells.
printf '{"manifest_version":2,"name":"panicky","runner":"docker-compose","e2e_panic_at_boot":true}' > "$tmp/panic.json"
check '[ $(rc deploy --name panicky --image $img --compose $tmp/panic.json --disk 1 --memory 256 --json) = 0 ]' "deploy a guest whose kernel panics at boot"
pv=$(js 'd["id"]' < "$tmp/out")
check 'wait_for "v info $pv | grep -q \"kernel panic .* (the guest rebooted in place): Attempted to kill init\"" 60 && v info $pv | grep -q "    | .*E2E-PANIC: init exits"' "info: its kernel panic, with the console lines before it"
check 'v events --vm $pv | grep -q "  $pv  panicked: Attempted to kill init"' "events: the panic"
check 'v info $pv --launch --json | js "d[-1][\"panic_count\"]" | grep -qv "^0$"' "info --launch --json: the panic count of its launch"
v stop -f "$pv" > /dev/null; v remove "$pv" > /dev/null
check '[ $(rc start $ap1 --wait running) = 0 ]' "an exited VM starts again"
check '[ $(rc apply $tmp/vms.toml --dry-run --json) = 0 ] && js "[s[\"action\"] for s in d]" < $tmp/out | grep -qx "\[.none., .none.\]"' "then the plan is empty again"
printf '[[vm]]\nname = "x"\nimage = "i"\ncompose = "apply-compose.json"\nmemroy = 1\n' > "$tmp/typo.toml"
check '[ $(rc apply $tmp/typo.toml) = 1 ] && grep -q "did you mean .memory." $tmp/err' "apply with a typo: exit 1, the closest key named"
for id in $(v lsvm --json | js '" ".join(v["id"] for v in d)'); do v stop -f "$id" > /dev/null; v remove "$id" > /dev/null; done

# 5: auth.
aport=$(free_port)
{ plain_config "$aport"; printf '[auth]\nenabled = true\ntokens = ["s3cret"]\n'; } > "$tmp/auth.toml"
(cd "$tmp" && exec "$vmm" -c auth.toml > log.auth 2>&1) & pids+=($!)
check 'wait_for "curl -s -o /dev/null http://127.0.0.1:$aport/" 20' "a daemon with auth up"
check '[ $(rc --url http://127.0.0.1:$aport lsvm) = 5 ] && grep -q -- "--token" $tmp/err' "no token: exit 5"
check '[ $(rc --url http://127.0.0.1:$aport --token wrong lsvm) = 5 ]' "a wrong token: exit 5"
check '[ $(rc --url http://127.0.0.1:$aport --token s3cret lsvm --json) = 0 ]' "--token"
check '[ $(DSTACK_VMM_TOKEN=s3cret rc --url http://127.0.0.1:$aport lsvm) = 0 ]' "DSTACK_VMM_TOKEN"
check '[ $(rc --url http://127.0.0.1:$aport --auth-user any --auth-password s3cret lsvm) = 0 ]' "--auth-user/--auth-password (Basic)"

# Many hosts: contexts (named daemons with their credentials) and a listing across them.
check 'v context add here --url http://127.0.0.1:$port > /dev/null && v context add guarded --url http://127.0.0.1:$aport --token s3cret > /dev/null && v context add gone --url http://127.0.0.1:1 > /dev/null' \
  "context add: three daemons, one with a token, one that is down"
check 'v context ls | grep -q "^\*  *here " && ! v context ls | grep -q s3cret && v context ls --json | js "[c[\"auth\"] for c in d]" | grep -qx "\[.none., .token., .none.\]"' \
  "context ls: the current one marked, credentials never printed"
check '[ "$(stat -c %a $HOME/.dstack-vmm/config.json)" = 600 ]' "the saved credentials are readable by their owner only"
check '[ $(rc --context guarded lsvm --json) = 0 ]' "--context: the saved token is used"
check '[ $(rc --context nope lsvm) = 2 ] && grep -q "no context named .nope." $tmp/err' "an unknown context: exit 2, with how to add it"
check '[ $(rc --all-contexts lsvm --json) = 0 ] && js "[(c[\"context\"], \"vms\" in c, \"error\" in c) for c in d]" < $tmp/out | grep -qx "\[(.gone., False, True), (.guarded., True, False), (.here., True, False)\]"' \
  "--all-contexts lsvm: every host's VMs, a host that is down as an error entry"
check '[ $(rc context use guarded) = 0 ] && [ $(rc lsvm --json) = 0 ] && [ $(rc context use zzz) = 2 ]' "context use: later commands talk to it (with its token)"
check '[ $(rc context rm gone) = 0 ] && [ $(rc context rm guarded) = 0 ] && [ $(rc context rm here) = 0 ] && [ "$(v context ls --json)" = "[]" ]' "context rm"
exit $fail
