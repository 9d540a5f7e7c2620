// SPDX-License-Identifier: Apache-2.0
// vm-manifest.json: a VM's configuration on disk, in upstream's format (read and written both ways).
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>
#include <dstackvmm/port_mapping.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm {

struct DSTACKVMM_EXPORT VmManifest {
  std::string id;
  std::string name;
  std::string app_id;  // 40 hex chars
  uint32_t vcpu = 1;
  uint32_t memory = 1024;    // MB
  uint32_t disk_size = 20;   // GB
  std::string image;
  std::vector<PortMapping> port_map;
  uint64_t created_at_ms = 0;
  bool hugepages = false;
  bool pin_numa = false;
  std::optional<GpuSelection> gpus;
  std::vector<std::string> kms_urls;
  std::vector<std::string> gateway_urls;
  bool no_tee = false;
  std::optional<std::string> simulated_tee;
  bool swtpm = false;
  std::vector<NetworkSpec> networks;  // empty = the node default
  std::vector<std::string> volumes;   // verity volume sources
  bool operator==(const VmManifest&) const = default;
};

// The manifest's fields a VmConfiguration gives as they are (name, sizes, image, ports, URLs,
// hugepages, pin_numa, networks as requested, simulated_tee; no_tee also when simulated).
// What create resolves or makes (id, app id, GPUs, volumes, swtpm, created_at) is left empty.
DSTACKVMM_EXPORT VmManifest manifest_for(const VmConfiguration& config);
// The other way, as VmInfo shows a VM: the shared fields, the app id, the GPUs asked for
// (their slots; bridges are the host's choice), `stopped` = !started. The compose, env and
// user config live in files of their own and are left empty.
DSTACKVMM_EXPORT VmConfiguration configuration_of(const VmManifest& manifest, bool started);

// Compact JSON with upstream's field names, plus `networking` (a copy of networks[0]) that
// older upstream readers expect.
DSTACKVMM_EXPORT std::string manifest_to_json(const VmManifest& manifest);
// Accepts what upstream writes, including a legacy `networking` without `networks`.
// kInvalidArgument naming the field on a bad document.
DSTACKVMM_EXPORT Result<VmManifest> manifest_from_json(std::string_view json);

}  // namespace dstackvmm
