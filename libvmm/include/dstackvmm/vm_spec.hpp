// SPDX-License-Identifier: Apache-2.0
// What a VM is asked to be: the configuration CreateVm takes, the changes UpdateVm makes, and
// the parts they are made of (NICs, GPUs). Plain values, below the engine: the QEMU command
// line, the wire codecs, the client and the engine all speak of a VM in these terms.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/port_mapping.hpp>

namespace dstackvmm {

// One NIC, as requested (mode only) or resolved over [cvm.networking].
struct DSTACKVMM_EXPORT NetworkSpec {
  std::string mode = "user";  // user | bridge | custom
  std::string bridge;
  std::string mac_prefix;
  std::string net;
  std::string dhcp_start;
  bool restrict = false;
  std::string netdev;
  bool operator==(const NetworkSpec&) const = default;
};

// The GPUs a VM asked for.
struct GpuRequest {
  std::string attach_mode;  // "listed" | "all"
  std::vector<std::string> slots;
  bool operator==(const GpuRequest&) const = default;
};

// The GPUs a VM got: stored in its manifest, frozen at create/update time as upstream does.
struct DSTACKVMM_EXPORT GpuSelection {
  std::string attach_mode = "listed";
  std::vector<std::string> gpus;
  std::vector<std::string> bridges;
  bool empty() const { return gpus.empty() && bridges.empty(); }
  bool operator==(const GpuSelection&) const = default;
};

// The wire's VmConfiguration: what CreateVm takes and VmInfo.configuration shows.
struct VmConfiguration {
  std::string name;
  std::string image;
  std::string compose_file;  // app-compose.json text, stored byte for byte
  uint32_t vcpu = 1;
  uint32_t memory = 1024;   // MB
  uint32_t disk_size = 20;  // GB
  std::vector<PortMapping> ports;
  std::string encrypted_env;  // raw bytes
  std::optional<std::string> app_id;
  std::string user_config;
  bool hugepages = false;
  bool pin_numa = false;
  std::optional<GpuRequest> gpus;
  std::vector<std::string> kms_urls;
  std::vector<std::string> gateway_urls;
  bool stopped = false;  // create without starting; in VmInfo: !started
  bool no_tee = false;
  std::vector<NetworkSpec> networks;
  std::optional<std::string> simulated_tee;
  bool operator==(const VmConfiguration&) const = default;
};

// UpdateVm: each set field replaces the VM's value; changes apply at the next start.
struct VmUpdate {
  std::string id;
  std::optional<std::string> compose_file;
  std::optional<std::string> encrypted_env;
  std::optional<std::string> user_config;
  std::optional<std::vector<PortMapping>> ports;
  std::optional<std::vector<std::string>> kms_urls;
  std::optional<std::vector<std::string>> gateway_urls;
  std::optional<GpuRequest> gpus;
  std::optional<uint32_t> vcpu, memory, disk_size;
  std::optional<std::string> image;
  std::optional<bool> no_tee;
  std::optional<std::vector<NetworkSpec>> networks;
};

}  // namespace dstackvmm
