// SPDX-License-Identifier: Apache-2.0
// PCI devices for passthrough, read from a sysfs root (tests pass a fake tree), and who may use them.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm {

struct DSTACKVMM_EXPORT PciDevice {
  std::string slot;     // short form, as upstream and the API use it: "18:00.0"
  std::string address;  // sysfs name: "0000:18:00.0"
  std::string vendor;   // "10de"
  std::string device;   // "2335"
  uint32_t class_code = 0;  // 0x030200
  std::string driver;       // bound driver ("vfio-pci", "nvidia"), "" when unbound
  std::optional<uint32_t> iommu_group;
  std::optional<int> numa_node;
  bool bus_master = false;  // command register bit 2: in use by a host driver or a guest

  std::string product_id() const { return vendor + ":" + device; }
  bool is_gpu() const;       // display controller (VGA or 3D)
  bool is_nvswitch() const;  // NVIDIA bridge, attached alongside GPUs in "all" mode
  std::string description() const;
};

// A snapshot of the host's PCI devices. Immutable once discovered: safe to share.
class DSTACKVMM_EXPORT GpuInventory {
 public:
  // Reads <sysfs_root>/bus/pci/devices/*. A missing folder is an empty inventory.
  static GpuInventory discover(const std::filesystem::path& sysfs_root);

  const std::vector<PciDevice>& devices() const { return devices_; }
  const PciDevice* find(const std::string& slot) const;

  // The devices offered by [cvm.gpu]: product in `listing`, slot not in `exclude`, and in
  // `include` when that is non-empty. Empty when GPUs are disabled.
  std::vector<PciDevice> offered(const GpuConfig& config) const;

  // Resolves a request: "GPU is not enabled", "Invalid GPU attach mode: x", "Attaching all GPUs
  // is not allowed", "GPU 18:00.0 not found", "GPU 18:00.0 is not offered for passthrough ...".
  Result<GpuSelection> resolve(const GpuConfig& config, const GpuRequest& request) const;

  // kAlreadyExists "GPU 18:00.0 is already attached to VM <id>" when a slot of `wanted` is held
  // by another VM in `held_by_vm` (upstream does not check this).
  static Status check_free(const std::string& vm_id, const GpuSelection& wanted,
                           const std::map<std::string, GpuSelection>& held_by_vm);

 private:
  std::vector<PciDevice> devices_;
};

}  // namespace dstackvmm
