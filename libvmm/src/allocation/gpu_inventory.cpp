// SPDX-License-Identifier: Apache-2.0
// PCI devices for passthrough, read from a sysfs root, and who may use them.
#include <dstackvmm/gpu_inventory.hpp>

#include <algorithm>
#include <fstream>

#include "base/fs_util.hpp"
#include "base/text_util.hpp"

namespace dstackvmm {

namespace fs = std::filesystem;

bool PciDevice::is_gpu() const { return (class_code >> 16) == 0x03; }
bool PciDevice::is_nvswitch() const { return vendor == "10de" && (class_code >> 16) == 0x06; }

std::string PciDevice::description() const {
  std::string kind = (class_code >> 8) == 0x0302 ? "3D controller"
                     : (class_code >> 8) == 0x0300 ? "VGA compatible controller"
                     : (class_code >> 16) == 0x06  ? "Bridge"
                                                   : "PCI device";
  std::string vendor_name = vendor == "10de" ? "NVIDIA Corporation" : vendor == "1002" ? "AMD" : vendor;
  return kind + ": " + vendor_name + " Device " + device;
}

namespace {

std::string strip_0x(std::string s) { return s.rfind("0x", 0) == 0 ? s.substr(2) : s; }

PciDevice read_device(const fs::path& dir) {
  PciDevice d;
  d.address = dir.filename().string();
  d.slot = d.address.size() > 5 && d.address[4] == ':' ? d.address.substr(5) : d.address;
  d.vendor = strip_0x(internal::read_attribute(dir / "vendor"));
  d.device = strip_0x(internal::read_attribute(dir / "device"));
  std::string cls = internal::read_attribute(dir / "class");
  if (!cls.empty()) d.class_code = static_cast<uint32_t>(std::stoul(cls, nullptr, 16));
  std::error_code ec;
  if (fs::is_symlink(dir / "driver", ec)) d.driver = fs::read_symlink(dir / "driver", ec).filename().string();
  if (fs::is_symlink(dir / "iommu_group", ec)) {
    std::string g = fs::read_symlink(dir / "iommu_group", ec).filename().string();
    if (all_digits(g) && g.size() < 10) d.iommu_group = std::stoul(g);
  }
  std::string numa = internal::read_attribute(dir / "numa_node");
  if (!numa.empty()) d.numa_node = std::stoi(numa);
  std::ifstream config(dir / "config", std::ios::binary);
  unsigned char head[6] = {};
  if (config.read(reinterpret_cast<char*>(head), sizeof head)) d.bus_master = (head[4] & 0x04) != 0;
  return d;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

}  // namespace

GpuInventory GpuInventory::discover(const fs::path& sysfs_root) {
  GpuInventory inv;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sysfs_root / "bus/pci/devices", ec)) {
    try {
      inv.devices_.push_back(read_device(e.path()));
    } catch (const std::exception&) {
      // A device with unreadable ids cannot be offered; skip it rather than hide the others.
    }
  }
  std::sort(inv.devices_.begin(), inv.devices_.end(),
            [](const PciDevice& a, const PciDevice& b) { return a.address < b.address; });
  return inv;
}

const PciDevice* GpuInventory::find(const std::string& slot) const {
  for (const auto& d : devices_)
    if (d.slot == slot || d.address == slot) return &d;
  return nullptr;
}

std::vector<PciDevice> GpuInventory::offered(const GpuConfig& config) const {
  std::vector<PciDevice> out;
  if (!config.enabled) return out;
  for (const auto& d : devices_) {
    if (!contains(config.listing, d.product_id())) continue;
    if (contains(config.exclude, d.slot)) continue;
    if (!config.include.empty() && !contains(config.include, d.slot)) continue;
    out.push_back(d);
  }
  return out;
}

Result<GpuSelection> GpuInventory::resolve(const GpuConfig& config, const GpuRequest& request) const {
  GpuSelection sel;
  if (request.attach_mode != "listed" && request.attach_mode != "all")
    return invalid("Invalid GPU attach mode: " + request.attach_mode);
  sel.attach_mode = request.attach_mode;
  bool empty = request.attach_mode == "listed" && request.slots.empty();
  if (empty) return sel;
  if (!config.enabled) return invalid("GPU is not enabled");
  if (request.attach_mode == "all") {
    if (!config.allow_attach_all) return invalid("Attaching all GPUs is not allowed");
    for (const auto& d : devices_) {
      if (d.vendor == "10de" && (d.class_code >> 8) == 0x0302) sel.gpus.push_back(d.slot);
      else if (d.is_nvswitch()) sel.bridges.push_back(d.slot);
    }
    return sel;
  }
  auto offered_now = offered(config);
  for (const auto& slot : request.slots) {
    const PciDevice* d = find(slot);
    if (!d) return make_error(ErrorCode::kNotFound, "GPU " + slot + " not found");
    bool ok = std::any_of(offered_now.begin(), offered_now.end(),
                          [&](const PciDevice& o) { return o.slot == d->slot; });
    if (!ok)
      return invalid("GPU " + slot + " is not offered for passthrough (see [cvm.gpu] listing, "
                     "include and exclude)");
    if (contains(sel.gpus, d->slot)) return invalid("GPU " + slot + " is listed twice");
    sel.gpus.push_back(d->slot);
  }
  return sel;
}

Status GpuInventory::check_free(const std::string& vm_id, const GpuSelection& wanted,
                                const std::map<std::string, GpuSelection>& held_by_vm) {
  for (const auto& [other, held] : held_by_vm) {
    if (other == vm_id) continue;
    for (const auto* list : {&wanted.gpus, &wanted.bridges})
      for (const auto& slot : *list)
        if (contains(held.gpus, slot) || contains(held.bridges, slot))
          return make_error(ErrorCode::kAlreadyExists,
                            "GPU " + slot + " is already attached to VM " + other);
  }
  return {};
}

}  // namespace dstackvmm
