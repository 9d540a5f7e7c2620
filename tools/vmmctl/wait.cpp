// SPDX-License-Identifier: Apache-2.0
#include "wait.hpp"

#include <chrono>
#include <iostream>

namespace vmmctl {

void add_wait_flags(CLI::App* cmd, WaitFlags& flags, const char* fallback) {
  cmd->add_option("--wait", flags.state, std::string("wait until the VM is running or stopped (default: ") + fallback +
                                             "), up to --timeout seconds")
      ->expected(0, 1)
      ->default_str(fallback)
      ->check(CLI::IsMember({"running", "stopped"}));
}

void finish_with_wait(Cli& cli, const std::string& id, const WaitFlags& flags, const Json& result) {
  if (!flags.state.empty()) {
    auto timeout = std::chrono::milliseconds(static_cast<int64_t>(cli.globals().timeout_s * 1000));
    Json last;
    Status s = cli.client().wait_status(id, flags.state, timeout, [&](std::string_view info) {
      auto parsed = dstackvmm::client::parse_reply(std::string(info));
      if (!parsed.ok()) return;
      const Json& vm = last = *parsed;
      std::string boot = field_string(vm, "boot_progress");
      cli.progress(field_string(vm, "name", id) + ": " + field_string(vm, "status", "?") + (boot.empty() || boot == "N/A" ? "" : " (" + boot + ")"));
    });
    cli.progress_done();
    must(s);
    if (cli.json()) {
      Json out = result;
      out["status"] = field_string(last, "status", flags.state);
      return print_json(out);
    }
    std::cout << field_string(last, "name", id) << " is " << field_string(last, "status", flags.state) << "\n";
    return;
  }
  if (cli.json()) print_json(result);
}

}  // namespace vmmctl
