// SPDX-License-Identifier: Apache-2.0
// JSON as the attestation chain hashes it: RFC 8785 (JCS) for MrConfigV3 and the GPU policy,
// and serde_json's compact form for what the guest reads (vm_config, .sys-config.json).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dstackvmm::internal {

// RFC 8785: object keys sorted by their UTF-16 code units, no whitespace, strings with the
// minimal escaping (\" \\ \b \f \n \r \t, other controls as \u00xx), numbers as ECMAScript
// prints them (integers plain, 1e+21, 1e-7). Recursion is bounded by the value's depth, which
// every parser of outside text here has already capped (json_limits.hpp).
std::string canonical_json(const nlohmann::json& value);

// serde_json::to_string of a value built in insertion order: compact, `/` not escaped,
// non-ASCII as raw UTF-8 (invalid UTF-8 replaced, never thrown on).
std::string compact_json(const nlohmann::ordered_json& value);

}  // namespace dstackvmm::internal
