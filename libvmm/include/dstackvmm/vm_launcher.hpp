// SPDX-License-Identifier: Apache-2.0
// The launcher of a VM with a software TPM: one process that starts swtpm, waits for its
// socket, starts QEMU on it, and ends both together, so the supervisor (or the daemon's own
// launcher) keeps one process per VM as for any other. Upstream's `dstack-vmm vm-launcher
// --spec <workdir>/launch.json`, with its spec file and behaviour (tee-launch.md §9), so
// either VMM can adopt, stop or restart what the other started.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// <workdir>/launch.json.
struct LaunchSpec {
  std::vector<std::string> qemu;   // the VM's argv, exactly as it would run without a TPM
  std::vector<std::string> swtpm;  // swtpm's argv
  std::filesystem::path swtpm_socket;
  uint64_t startup_timeout_ms = 5000;   // for the socket to appear
  uint64_t shutdown_timeout_ms = 10000;  // per child, from SIGTERM to SIGKILL
  bool operator==(const LaunchSpec&) const = default;
};

// Pretty JSON in upstream's field order ({"qemu":{"command","args"},"swtpm":{...},...}).
DSTACKVMM_EXPORT std::string launch_spec_json(const LaunchSpec& spec);
// Upstream's rules: qemu.command, swtpm.command and swtpm_socket required; args and the
// timeouts default; unknown keys ignored. kInvalidArgument "failed to parse launch spec: ...".
DSTACKVMM_EXPORT Result<LaunchSpec> parse_launch_spec(std::string_view json);

// Runs the launcher on `spec_file` until QEMU ends (or SIGTERM/SIGINT stops both); progress
// and errors ("Error: ...") are printed on stdout and stderr. Returns the process exit code:
// 0 when QEMU exited cleanly or a signal stopped it, 1 otherwise. For a program's main (the
// daemon's hidden `vm-launcher` command); it blocks SIGTERM and SIGINT in the calling thread.
DSTACKVMM_EXPORT int run_vm_launcher(const std::filesystem::path& spec_file);

}  // namespace dstackvmm
