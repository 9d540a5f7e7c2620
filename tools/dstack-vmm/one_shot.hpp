// SPDX-License-Identifier: Apache-2.0
// `dstack-vmm run`: one VM without a daemon, or (--dry-run) the command line it would run and
// the files it would hand the guest.
#pragma once

#include <string>

#include <dstackvmm/config.hpp>

namespace dstackvmm::daemon {

struct OneShotOptions {
  std::string vm_config;  // CreateVm's VmConfiguration as JSON; "" when the workdir holds a VM
  std::string workdir;    // the VM's folder; "" = <run_path>/<new id>
  bool dry_run = false;
  bool json = false;  // --dry-run as one JSON object (argv, qemu_argv, sys_config, vm_config, ...)
};

// Exit code: 0 once the VM ended (guest power-off or a signal stopped it) or the dry run
// printed; 1 with a message on stderr otherwise.
int run_one_shot(const Config& config, const OneShotOptions& options);

}  // namespace dstackvmm::daemon
