// SPDX-License-Identifier: Apache-2.0
// What the VMM reads of app-compose.json and of a VM's name (the rest is opaque to it).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// "Invalid compose file: <why>" unless the text parses as upstream's AppCompose: a JSON object
// with manifest_version, name and runner; key_provider_id (if any) hex; init_script a string
// or at most 5 strings.
Status validate_compose(std::string_view compose);
// "Invalid name: <name>" unless ASCII alnum and - _ . space @ ~ ! $ ^ ( ).
Status validate_vm_name(std::string_view name);
// app_id: the given one with 0x stripped and lowercased, or sha256(compose)[0..40 hex].
Result<std::string> resolve_app_id(const std::optional<std::string>& given, std::string_view compose);

}  // namespace dstackvmm::internal
