// SPDX-License-Identifier: Apache-2.0
// What a launch takes from app-compose.json: the fields upstream's AppCompose types and that
// decide MrConfig, the TDX variant, the software TPM and verity volumes. Everything else in
// the compose is opaque to the VMM (it is measured whole, through its hash).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// One entry of the compose's verity_volumes, checked for shape (not yet resolved to a file).
struct VerityVolumeRequest {
  std::string source;       // a bare file name under [cvm] volumes_dir
  std::string verity_root;  // 32 raw bytes
  std::string target;       // an absolute path in the guest
};

struct ComposeFacts {
  std::string manifest_version;                  // canonical: "2", "3"
  std::optional<uint32_t> manifest_version_number;
  std::string key_provider = "none";             // effective: none | kms | local | tpm
  std::string key_provider_id;                   // raw bytes
  bool no_instance_id = false;
  std::vector<std::string> init_scripts;
  std::optional<bool> tdx_measure_acpi_tables;   // requirements.tdx_measure_acpi_tables
  nlohmann::json gpu_policy = nlohmann::json::object();  // requirements.gpu_policy as written, or {}
  std::vector<VerityVolumeRequest> verity_volumes;
};

// Reads the compose as upstream's AppCompose would, refusing what it refuses: kInvalidArgument
// "Invalid compose file: <why>" (not JSON, missing manifest_version/name/runner, a
// manifest_version that is not "N" or legacy 1/2, a key_provider_id that is not plain hex,
// more than 5 init scripts, an unknown requirements or gpu_policy key, a malformed or
// duplicate verity volume, a known field of the wrong type).
Result<ComposeFacts> read_compose(std::string_view compose);
inline Status validate_compose(std::string_view compose) {
  auto r = read_compose(compose);
  if (!r.ok()) return r.error();
  return {};
}

// The key provider as upstream decides the software TPM: from the raw JSON, a non-null
// key_provider, else kms_enabled, else local_key_provider_enabled, else "none".
Result<std::string> key_provider_from_compose(std::string_view compose);

// Whether a VM needs a software TPM (manifest.swtpm): key provider "tpm", unless the simulated
// platform brings its own TPM (dstack-gcp-tdx, dstack-aws-nitro-tpm).
bool needs_swtpm(std::string_view key_provider, const std::optional<std::string>& simulated_tee);

// Upstream's vm_config.tdx_attestation_variant ("legacy" | "lite"): the compose's requirement,
// else [cvm] tdx_attestation_variant, else (auto) by memory and the image's TDX material.
std::string resolve_tdx_attestation_variant(std::string_view configured, bool tdx_tee, std::optional<bool> measure_acpi_tables,
                                            uint32_t memory_mb, bool image_supports_lite);

}  // namespace dstackvmm::internal
