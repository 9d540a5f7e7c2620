// SPDX-License-Identifier: Apache-2.0
// What the VMM reads of app-compose.json and of a VM's name (the rest is opaque to it).
#pragma once

#include <optional>
#include <cstdint>
#include <string>
#include <vector>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// "Invalid compose file: <why>" unless the text parses as upstream's AppCompose: a JSON object
// with manifest_version, name and runner; key_provider_id (if any) hex; init_script a string
// or at most 5 strings.
Status validate_compose(std::string_view compose);
// "Invalid name: <name>" unless ASCII alnum and - _ . space @ ~ ! $ ^ ( ).
Status validate_vm_name(std::string_view name);
// requirements.tdx_measure_acpi_tables, when the compose sets it.
std::optional<bool> compose_tdx_measure_acpi_tables(std::string_view compose);
// Upstream's vm_config.tdx_attestation_variant ("legacy" | "lite"): the compose's requirement,
// else [cvm] tdx_attestation_variant, else (auto) by memory and the image's TDX material. A
// start refuses lite without the material.
std::string resolve_tdx_attestation_variant(std::string_view configured, bool tdx_tee, std::optional<bool> measure_acpi_tables,
                                            uint32_t memory_mb, bool image_has_tdx_material);
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
