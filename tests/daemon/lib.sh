# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the daemon's shell tests: checks, deadlines, a free port, a daemon.
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }
wait_for() {  # wait_for CONDITION SECONDS: poll every 50 ms until true or the deadline
  local deadline=$((SECONDS + $2))
  while ! eval "$1"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.05; done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
# Daemons, the supervisors they started and any guest: everything that names our folder.
# The daemons go first, and are waited for (10 s, then -9): a daemon still running when its
# supervisor is killed would start a new one, which nothing would then stop.
gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait_for "gone $p" 10 || kill -9 "$p" 2>/dev/null; done
  # A daemon started in the folder with a relative config names it nowhere on its command
  # line, only in its working directory; it goes before the supervisors it could respawn.
  local d
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = $$ ] && continue
    case "$(readlink "$d/cwd" 2>/dev/null)" in "$tmp"|"$tmp"/*) kill -9 "${d#/proc/}" 2>/dev/null;; esac
  done
  pkill -9 -f "$tmp" 2>/dev/null
  rm -rf "$tmp"
}
start_daemon() {  # start_daemon CONFIG LOG
  "$vmm" -c "$1" > "$2" 2>&1 & pids+=($!)
}
# plain_config PORT [IMAGE-TABLE-LINES]: a daemon on 127.0.0.1:PORT with state under the
# config's folder (vms/, images/). Scripts append their own tables.
plain_config() {
  cat <<TOML
address = "127.0.0.1"
port = $1
run_path = "vms"
[image]
path = "images"
${2:-}
TOML
}
# tiny_image FOLDER [NAME]: an image that loads but boots nothing (NAME defaults to img), for
# tests whose VMs never run.
tiny_image() {
  mkdir -p "$1/${2:-img}"
  echo '{"kernel":"k","initrd":"i","version":"0.6.0","shared_ro":true}' > "$1/${2:-img}/metadata.json"
  touch "$1/${2:-img}/k" "$1/${2:-img}/i"
}
# The test guest image folder (built once, cached under the build tree).
guest_image() { "$1/tests/guest/build-image.sh" "$2/guest-image" | tail -1; }
# guest_config PORT IMAGE [TOP-LEVEL-LINES]: a daemon config that boots the test guest under
# TCG on the user-net channel, with QMP and port mapping on. Scripts append their own tables.
guest_config() {
  cat <<TOML
address = "127.0.0.1"
port = $1
run_path = "vms"
${3:-}
[image]
path = "$(dirname "$2")"
[cvm]
platform = "none"
accel = "tcg"
guest_channel = "user-net"
qmp_socket = true
[cvm.port_mapping]
enabled = true
range = [{ protocol = "tcp", from = 1024, to = 65535 }]
TOML
}
