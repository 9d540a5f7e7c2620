// SPDX-License-Identifier: Apache-2.0
// What a start hands the guest in shared/: .sys-config.json with its vm_config (what the
// verifier recomputes measurements from) and, for simulated TEEs, .tee-simulator.json. Byte
// for byte as upstream writes them (tee-launch.md §3, §10): key order, left-out defaults,
// hex and base64 forms. Pure: the caller reads the inputs and writes the results.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/manifest.hpp>

#include "tee/compose_facts.hpp"
#include "tee/image_material.hpp"

namespace dstackvmm::internal {

struct VmConfigInputs {
  const CvmConfig* cvm = nullptr;
  Platform platform = Platform::kNone;  // resolved (never kAuto)
  const VmManifest* manifest = nullptr;
  const Image* image = nullptr;
  const MeasurementMaterial* material = nullptr;
  const ComposeFacts* compose = nullptr;
  std::optional<std::string> qemu_version;  // [cvm] qemu_version, else what the binary said
  uint32_t cpu_count = 1;                   // as -smp (hugepages round it up)
  size_t num_nics = 1;                      // resolved NICs
  std::optional<std::string> mr_config;     // the MrConfigV3 document, when the VM has one
};

struct VmConfigResult {
  std::string vm_config;                // compact JSON text
  std::string tdx_attestation_variant;  // "legacy" | "lite" (only "lite" appears in vm_config)
};

// Upstream's make_vm_config, with its errors in its order (kFailedPrecondition): lite without
// the image's TDX material, a simulated GCP or AWS TEE without theirs, an AWS replay that
// does not match, SEV-SNP without measurement.snp.cbor.
Result<VmConfigResult> build_vm_config(const VmConfigInputs& in);

// .sys-config.json around a vm_config: the node's (or the VM's) URLs, then vm_config, then
// the MrConfigV3 document when there is one. Compact, no trailing newline.
std::string build_sys_config(const CvmConfig& cvm, const VmManifest& manifest, const std::string& host_api_url,
                             const std::string& vm_config, const std::optional<std::string>& mr_config);

// .tee-simulator.json of a simulated-TEE VM: the node's [cvm.tee_simulator] with the VM's
// platform, its mr_config and vm_config, and the replays vm_config carries.
std::string build_tee_simulator_config(const TeeSimulatorConfig& node, const std::string& platform,
                                       const std::optional<std::string>& mr_config, const std::string& vm_config);

}  // namespace dstackvmm::internal
