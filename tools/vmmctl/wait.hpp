// SPDX-License-Identifier: Apache-2.0
// --wait [running|stopped]: after deploy, start or stop, block until the VM gets there.
#pragma once

#include <string>

#include "cli.hpp"

namespace vmmctl {

struct WaitFlags {
  std::string state;  // empty: do not wait
};

// Adds `--wait [STATE]` (STATE defaults to `fallback`); the limit is the global --timeout.
void add_wait_flags(CLI::App* cmd, WaitFlags& flags, const char* fallback);

// Waits if asked (a progress line on a terminal), then prints `result` when --json.
void finish_with_wait(Cli& cli, const std::string& id, const WaitFlags& flags, const Json& result);

}  // namespace vmmctl
