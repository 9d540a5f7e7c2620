// SPDX-License-Identifier: Apache-2.0
// What the VMM reads of app-compose.json for a VM's identity and URL, and of a VM's name
// (what a launch reads of it: tee/compose_facts.hpp).
#pragma once

#include <optional>
#include <cstdint>
#include <string>
#include <vector>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// "Invalid name: <name>" unless ASCII alnum and - _ . space @ ~ ! $ ^ ( ).
Status validate_vm_name(std::string_view name);
// Whether the compose turns the gateway on (gateway_enabled, legacy tproxy_enabled, or the
// deprecated "tproxy-net" feature).
bool compose_enables_gateway(std::string_view compose);
// upstream's app_url rule; nullopt unless the gateway is on and instance_id is known.
std::optional<std::string> app_url(bool gateway_enabled, const std::optional<std::string>& instance_id,
                                   const std::vector<std::string>& vm_gateway_urls, const std::string& base_domain,
                                   uint32_t gateway_port, uint32_t agent_port);
// app_id: the given one with 0x stripped and lowercased, or sha256(compose)[0..40 hex].
Result<std::string> resolve_app_id(const std::optional<std::string>& given, std::string_view compose);

}  // namespace dstackvmm::internal
