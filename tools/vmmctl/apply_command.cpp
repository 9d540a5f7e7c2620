// SPDX-License-Identifier: Apache-2.0
// vmmctl apply FILE: make the daemon's VMs what the file says (see client/provision.hpp).
#include <iostream>

#include <dstackvmm/client/provision.hpp>

#include "cli.hpp"
#include "env_key.hpp"

namespace vmmctl {

namespace dc = dstackvmm::client;

void add_apply_command(CLI::App& app, Cli& cli) {
  static std::string file;
  static bool dry_run = false;
  static double stop_timeout = 60;
  auto* ap = app.add_subcommand("apply", "create, update, start or stop VMs so they match a file; prints the plan first");
  ap->add_option("file", file, "TOML ([[vm]] tables) or JSON file of VMs")->required()->check(CLI::ExistingFile);
  ap->add_flag("--dry-run", dry_run, "print the plan and change nothing");
  ap->add_option("--stop-timeout", stop_timeout, "seconds a VM gets to power off before it is stopped hard")->capture_default_str();
  ap->footer(R"(Each [[vm]] takes deploy's names: name, image, vcpu, memory, disk, compose (a path, relative
to the file), ports, gpus, env_file, kms_urls, gateway_urls, stopped. VMs are matched by
name; VMs the file does not name are left alone. A running VM that changes is stopped,
updated and started again. An env_file is encrypted and sent when the VM is created.)");
  ap->callback([&cli] {
    auto desired = must(dc::load_provision_file(file));
    auto plan = must(dc::make_plan(desired, must(cli.client().status({}))));
    if (cli.json() && dry_run) return print_json(Json::parse(dc::plan_to_json(plan)));
    if (!cli.json()) std::cout << dc::plan_to_text(plan) << std::flush;
    if (dry_run) return;
    dc::ApplyOptions o;
    o.stop_timeout = std::chrono::milliseconds(static_cast<int64_t>(stop_timeout * 1000));
    o.progress = [&cli](const std::string& line) { cli.progress(line); };
    o.encrypt_env = [&cli](const dc::DesiredVm& vm, const std::string& app_id) -> dstackvmm::Result<std::string> {
      if (vm.kms_urls.empty())
        return dstackvmm::Error{ErrorCode::kInvalidArgument, "VM '" + vm.name + "' has an env_file but no kms_urls to get its key from"};
      return encrypt_env_for_app(cli, vm.kms_urls.front(), app_id, *vm.env);
    };
    must(dc::apply_plan(cli.client(), desired, plan, o));
    cli.progress_done();
    if (cli.json()) print_json(Json::parse(dc::plan_to_json(plan)));
  });
}

}  // namespace vmmctl
