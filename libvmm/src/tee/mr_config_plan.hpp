// SPDX-License-Identifier: Apache-2.0
// Which MrConfig a start binds, and the V3 document with the .instance_info it goes with
// (tee-launch.md §7). Pure: the caller reads the files and writes what comes back.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/mr_config.hpp>

#include "tee/compose_facts.hpp"

namespace dstackvmm::internal {

enum class MrConfigVersion { kNone, kV1, kV3 };

// Upstream's rules, in order: simulated dstack-amd-sev-snp -> V3; no TEE (or platform none)
// -> none; SEV-SNP -> V3; TDX with a key_provider_id but use_mrconfigid off -> kFailedPrecondition
// "key provider ID requires MrConfigV3, but use_mrconfigid is disabled"; TDX without
// use_mrconfigid -> none; TDX with a key_provider_id -> V3; TDX -> V1.
Result<MrConfigVersion> select_mr_config_version(bool no_tee, const std::optional<std::string>& simulated_tee,
                                                 Platform platform, bool use_mrconfigid, bool has_key_provider_id);

// shared/.instance_info (byte fields raw; hex in the file, each "" by default).
struct InstanceInfo {
  std::string instance_id_seed, instance_id, app_id;
};
// Unknown keys are ignored; anything else wrong: kInvalidArgument "failed to get instance info: ...".
Result<InstanceInfo> parse_instance_info(std::string_view text);
// Compact, in upstream's key order: instance_id_seed, instance_id, app_id.
std::string instance_info_json(const InstanceInfo& info);

struct MrConfigV3Plan {
  std::string document;       // goes to .sys-config.json (and, on SEV-SNP, into vm_config)
  std::string instance_info;  // the new shared/.instance_info
};

// The V3 document of a start (§7.5): app id from .instance_info (`instance_info`: its text, or
// nullopt when the file is missing), else the compose hash's first 20 bytes; a fresh seed from
// `random` when the key provider is none or there is none yet; instance id = sha256(seed ||
// app id)[0..20] unless the compose says no_instance_id; the GPU policy hash when the VM has
// GPUs; init script hashes from manifest_version 3 on.
Result<MrConfigV3Plan> prepare_mr_config_v3(std::string_view compose_bytes, const ComposeFacts& compose,
                                            const std::optional<std::string>& instance_info, bool has_gpus,
                                            const std::function<std::string(size_t)>& random);

}  // namespace dstackvmm::internal
