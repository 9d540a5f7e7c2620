#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Provisioning with vmmctl, for scripts: check the daemon is healthy, bring the VMs of a fleet
# file to what it says (vmmctl apply), wait until each VM meant to run is running, and print
# one JSON document of what runs where. Exit status: vmmctl's (0 ok, 1 usage, 2 not found,
# 3 conflict, 4 unreachable, 5 auth, 6 daemon failed).
#   provision.sh FLEET.toml     (VMMCTL, and vmmctl's own --url/--token variables, from the environment)
set -euo pipefail
fleet=${1:?usage: provision.sh FLEET.toml}
vmmctl=${VMMCTL:-vmmctl}

"$vmmctl" --json health > /dev/null            # exit 6 when the daemon cannot do its work
"$vmmctl" --json apply "$fleet" > /dev/null     # creates, updates, starts and stops to match
# Wait for every VM the fleet wants running (apply has started them), by name.
wanted=$(python3 -c 'import sys, tomllib; print(" ".join(v["name"] for v in tomllib.load(open(sys.argv[1], "rb"))["vm"] if not v.get("stopped", False)))' "$fleet")
for name in $wanted; do
  id=$("$vmmctl" --json lsvm | python3 -c 'import json, sys; print(next(v["id"] for v in json.load(sys.stdin) if v["name"] == sys.argv[1]))' "$name")
  "$vmmctl" --json start "$id" --wait running > /dev/null  # already running: returns at once
done
"$vmmctl" --json lsvm | python3 -c '
import json, sys
vms = json.load(sys.stdin)
print(json.dumps({"vms": [{"name": v["name"], "id": v["id"], "status": v["status"]} for v in vms]}, indent=2))'
