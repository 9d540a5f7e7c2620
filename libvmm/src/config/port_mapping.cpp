// SPDX-License-Identifier: Apache-2.0
// Host-to-guest port mappings: checked against [cvm.port_mapping] and against every other VM.
#include <dstackvmm/port_mapping.hpp>

#include <dstackvmm/listen_address.hpp>

namespace dstackvmm {

namespace {
bool unspecified(const std::string& a) { return a == "0.0.0.0" || a == "::"; }
bool conflict(const PortMapping& a, const PortMapping& b) {
  return a.protocol == b.protocol && a.host_port == b.host_port &&
         (a.address == b.address || unspecified(a.address) || unspecified(b.address));
}
std::string describe(const PortMapping& m) {
  return m.protocol + " " + m.address + ":" + std::to_string(m.host_port);
}
Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }
}  // namespace

Status validate_port_mappings(const PortMappingConfig& config, std::vector<PortMapping>& mappings) {
  if (mappings.empty()) return {};
  if (!config.enabled) return invalid("Port mapping is disabled");
  for (auto& m : mappings) {
    if (m.protocol != "tcp" && m.protocol != "udp") return invalid("Invalid protocol: " + m.protocol);
    if (m.host_port == 0 || m.host_port > 65535) return invalid("Invalid host port");
    if (m.vm_port == 0 || m.vm_port > 65535) return invalid("Invalid vm port");
    if (m.address.empty()) m.address = config.address;
    if (!is_ip_address(m.address)) return invalid("Invalid host address");
    bool allowed = false;
    for (const auto& r : config.range)
      allowed = allowed || (r.protocol == m.protocol && r.from <= m.host_port && m.host_port <= r.to);
    if (!allowed)
      return invalid("Port mapping is not allowed for " + m.protocol + ":" + std::to_string(m.host_port));
  }
  return {};
}

Status PortMapper::check(const std::string& vm_id, const std::vector<PortMapping>& mappings) const {
  for (size_t i = 0; i < mappings.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (conflict(mappings[i], mappings[j]))
        return invalid("duplicate host port mapping: " + describe(mappings[i]));
  for (const auto& [other, held] : by_vm_) {
    if (other == vm_id) continue;
    for (const auto& m : mappings)
      for (const auto& h : held)
        if (conflict(m, h))
          return make_error(ErrorCode::kAlreadyExists,
                            "host port mapping conflicts with VM " + other + ": " + describe(m));
  }
  return {};
}

Status PortMapper::reserve(const std::string& vm_id, const std::vector<PortMapping>& mappings) {
  if (auto s = check(vm_id, mappings); !s.ok()) return s;
  by_vm_[vm_id] = mappings;
  return {};
}

void PortMapper::release(const std::string& vm_id) { by_vm_.erase(vm_id); }

}  // namespace dstackvmm
