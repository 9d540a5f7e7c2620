// SPDX-License-Identifier: Apache-2.0
// Host-to-guest port mappings: checked against [cvm.port_mapping] and against every other VM.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>

namespace dstackvmm {

struct DSTACKVMM_EXPORT PortMapping {
  std::string protocol = "tcp";  // tcp | udp
  std::string address;           // host IP to bind; "" = [cvm.port_mapping] address
  uint32_t host_port = 0;
  uint32_t vm_port = 0;
  bool operator==(const PortMapping&) const = default;
};

// Create-time rules, with upstream's messages: "Port mapping is disabled", "Invalid protocol: x",
// "Invalid host port" / "Invalid vm port", "Invalid host address", "Port mapping is not allowed
// for tcp:80". Fills empty addresses with the configured default.
DSTACKVMM_EXPORT Status validate_port_mappings(const PortMappingConfig& config, std::vector<PortMapping>& mappings);

// Which VM holds which host ports. Not thread-safe.
class DSTACKVMM_EXPORT PortMapper {
 public:
  // Conflict = same protocol and host port, and the same address or either unspecified
  // (0.0.0.0 / ::). Errors: "duplicate host port mapping: tcp 127.0.0.1:8080" within the
  // request, "host port mapping conflicts with VM <id>: tcp 0.0.0.0:8080" across VMs.
  Status check(const std::string& vm_id, const std::vector<PortMapping>& mappings) const;
  // check() then record (replacing what vm_id held).
  Status reserve(const std::string& vm_id, const std::vector<PortMapping>& mappings);
  void release(const std::string& vm_id);

 private:
  std::map<std::string, std::vector<PortMapping>> by_vm_;
};

}  // namespace dstackvmm
