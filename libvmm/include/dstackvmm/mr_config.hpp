// SPDX-License-Identifier: Apache-2.0
// MrConfig: the configuration a dstack guest's TEE report binds (TDX MRCONFIGID, SEV-SNP
// HOST_DATA), as upstream derives it. V1 binds the compose hash alone; V3 binds a JSON
// document (app id, compose hash, key provider, instance id, ...) that the guest reads from
// .sys-config.json and checks against its report. Verifiers hash the document's bytes as
// written: two documents that parse alike but differ in spacing bind different values.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Byte fields hold raw bytes (hex in the document).
struct MrConfigV3 {
  std::optional<std::string> app_id;                          // 20 bytes
  std::string compose_hash;                                   // 32 bytes: sha256 of app-compose.json
  std::optional<std::string> gpu_policy_hash;                 // 32 bytes, only when GPUs are attached
  std::optional<std::vector<std::string>> init_script_hashes;  // 32 bytes each, compose manifest_version >= 3
  std::optional<std::string> instance_id;                     // 20 bytes, unless the compose sets no_instance_id
  std::string key_provider = "none";                          // none | kms | local | tpm
  std::optional<std::string> key_provider_id;                 // the compose's key_provider_id, when not empty
  uint32_t version = 3;
  bool operator==(const MrConfigV3&) const = default;
};

// The document in RFC 8785 canonical JSON (keys sorted, no whitespace), absent fields left out.
DSTACKVMM_EXPORT std::string mr_config_document(const MrConfigV3& config);
// Upstream's MrConfigV3::from_document: unknown keys, bad hex, more than 5 init script
// hashes or one that is not 32 bytes are refused ("failed to parse mr_config document: ...").
DSTACKVMM_EXPORT Result<MrConfigV3> parse_mr_config(std::string_view document);

// SHA-256("dstack-mr-config-v3:" || 0x00 || document): the 32 bytes SEV-SNP reports as HOST_DATA.
DSTACKVMM_EXPORT std::string mr_config_v3_digest(std::string_view document);
// QEMU's sev-snp-guest host-data: base64 of mr_config_v3_digest (44 characters).
DSTACKVMM_EXPORT std::string snp_host_data(std::string_view document);
// QEMU's tdx-guest mrconfigid for a V3 document: base64(0x03 || digest || 15 zero bytes).
DSTACKVMM_EXPORT std::string tdx_mr_config_id_v3(std::string_view document);
// The V1 mrconfigid: base64(0x01 || sha256(app-compose.json) || 15 zero bytes).
DSTACKVMM_EXPORT std::string mrconfigid_v1(std::string_view compose_bytes);

}  // namespace dstackvmm
