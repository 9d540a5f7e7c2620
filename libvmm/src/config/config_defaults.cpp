// SPDX-License-Identifier: Apache-2.0
// The embedded development profile and the host-dependent defaults.
#include <cstdlib>

#include <dstackvmm/config.hpp>

namespace dstackvmm {

std::string_view embedded_dev_config() {
  // Everything a fresh checkout needs to run guests without root, KVM or vsock. Relative
  // paths resolve against the directory the daemon starts in.
  return R"(# dstack-vmm development profile (used when no -c FILE is given)
address = "127.0.0.1"
port = 8080
log_level = "info"
node_name = "dev"
run_path = ".dstack-vmm/vms"

[image]
path = ".dstack-vmm/images"

[cvm]
platform = "none"
accel = "tcg"
guest_channel = "auto"
qmp_socket = true
max_allocable_vcpu = 2
max_allocable_memory_in_mb = 2048
max_disk_size = 8

[cvm.port_mapping]
enabled = true
address = "127.0.0.1"
range = [{ protocol = "tcp", from = 1024, to = 65535 }, { protocol = "udp", from = 1024, to = 65535 }]

[supervisor]
exe = "supervisor"
sock = ".dstack-vmm/run/supervisor.sock"
pid_file = ".dstack-vmm/run/supervisor.pid"
log_file = ".dstack-vmm/run/supervisor.log"

[key_provider]
enabled = false
)";
}

Status resolve_home_defaults(Config& config) {
  if (!config.image.path.empty() && !config.run_path.empty()) return {};
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    return make_error(ErrorCode::kInvalidArgument,
                      "HOME is not set; set [image] path and run_path in the config");
  std::string base = std::string(home) + "/.dstack-vmm";
  if (config.image.path.empty()) config.image.path = base + "/image";
  if (config.run_path.empty()) config.run_path = base + "/vm";
  return {};
}

}  // namespace dstackvmm
