// SPDX-License-Identifier: Apache-2.0
// Everything a start writes into a VM's shared/ folder for its TEE, decided in one place
// (upstream's sync_dynamic_config): the MrConfig, .instance_info, .sys-config.json with its
// vm_config, and .tee-simulator.json. Pure: the caller reads the inputs and writes the files.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/manifest.hpp>

#include "tee/compose_facts.hpp"
#include "tee/image_material.hpp"
#include "tee/mr_config_plan.hpp"

namespace dstackvmm::internal {

struct GuestFileInputs {
  const CvmConfig* cvm = nullptr;
  Platform platform = Platform::kNone;  // resolved
  const VmManifest* manifest = nullptr;
  const Image* image = nullptr;
  const MeasurementMaterial* material = nullptr;
  std::string compose;                        // app-compose.json, its bytes
  const ComposeFacts* compose_facts = nullptr;
  std::optional<std::string> instance_info;   // shared/.instance_info, nullopt when missing
  std::optional<std::string> qemu_version;
  uint32_t cpu_count = 1;
  size_t num_nics = 1;
  std::string host_api_url;
  std::function<std::string(size_t)> random;  // fresh instance-id seeds
};

struct GuestFiles {
  MrConfigVersion mr_config_version = MrConfigVersion::kNone;
  std::optional<std::string> mr_config;      // the V3 document
  std::optional<std::string> instance_info;  // rewrite shared/.instance_info with this (V3 only)
  std::string vm_config;
  std::string sys_config;                    // shared/.sys-config.json
  std::optional<std::string> tee_simulator;  // shared/.tee-simulator.json; nullopt: remove it
  std::string tdx_attestation_variant;
};

// Errors as upstream's, in its order: "Failed to get app compose" (none here: the caller has
// the facts), MrConfig selection, "failed to get instance info", "tee simulator credentials
// are not configured on this VMM", then build_vm_config's.
Result<GuestFiles> prepare_guest_files(const GuestFileInputs& in);

}  // namespace dstackvmm::internal
