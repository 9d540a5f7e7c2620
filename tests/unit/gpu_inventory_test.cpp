// SPDX-License-Identifier: Apache-2.0
// GPU discovery from a fake sysfs tree: filters, "all" with NVSwitches, and conflicts.
#include <catch2/catch.hpp>

#include <dstackvmm/gpu_inventory.hpp>

#include "../support/fake_sysfs.hpp"
#include "../support/temp_dir.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

namespace {
struct Host {
  TempDir dir{"sysfs"};
  Host() {
    add_pci_device(dir.path(), {"0000:18:00.0", "10de", "2335", "0x030200", false, "vfio-pci", 40});
    add_pci_device(dir.path(), {"0000:2a:00.0", "10de", "2335", "0x030200", true, "nvidia", 41});
    add_pci_device(dir.path(), {"0000:3b:00.0", "10de", "2330", "0x030200", false, "vfio-pci", 42});
    add_pci_device(dir.path(), {"0000:05:00.0", "10de", "22a3", "0x068000", false, "vfio-pci", 43});  // NVSwitch
    add_pci_device(dir.path(), {"0000:00:02.0", "8086", "1234", "0x030000", false, "i915", 2});
  }
  GpuInventory inv() const { return GpuInventory::discover(dir.path()); }
};
GpuConfig enabled() {
  GpuConfig c;
  c.enabled = true;
  return c;
}
}  // namespace

TEST_CASE("PCI devices are read from sysfs", "[gpu]") {
  Host h;
  auto inv = h.inv();
  REQUIRE(inv.devices().size() == 5);
  const PciDevice* d = inv.find("18:00.0");
  REQUIRE(d);
  CHECK(d->address == "0000:18:00.0");
  CHECK(d->product_id() == "10de:2335");
  CHECK(d->class_code == 0x030200);
  CHECK(d->driver == "vfio-pci");
  CHECK(d->iommu_group == 40u);
  CHECK(d->numa_node == -1);
  CHECK_FALSE(d->bus_master);
  CHECK(d->is_gpu());
  CHECK(d->description() == "3D controller: NVIDIA Corporation Device 2335");
  CHECK(inv.find("2a:00.0")->bus_master);
  CHECK(inv.find("05:00.0")->is_nvswitch());
  CHECK(GpuInventory::discover(h.dir.path() / "nothing").devices().empty());
}

TEST_CASE("offered GPUs follow listing, include and exclude", "[gpu]") {
  Host h;
  auto inv = h.inv();
  CHECK(inv.offered(GpuConfig{}).empty());  // disabled
  auto c = enabled();
  auto slots = [&](const GpuConfig& cfg) {
    std::vector<std::string> s;
    for (const auto& d : inv.offered(cfg)) s.push_back(d.slot);
    return s;
  };
  CHECK(slots(c) == std::vector<std::string>{"18:00.0", "2a:00.0"});
  c.exclude = {"2a:00.0"};
  CHECK(slots(c) == std::vector<std::string>{"18:00.0"});
  c.exclude.clear();
  c.include = {"2a:00.0"};
  CHECK(slots(c) == std::vector<std::string>{"2a:00.0"});
  c.include.clear();
  c.listing = {"10de:2335", "10de:2330"};
  CHECK(slots(c).size() == 3);
}

TEST_CASE("GPU requests resolve as upstream, and refuse what is not offered", "[gpu]") {
  Host h;
  auto inv = h.inv();
  auto c = enabled();
  auto all = inv.resolve(c, {"all", {}});
  REQUIRE(all.ok());
  CHECK(all->gpus == std::vector<std::string>{"18:00.0", "2a:00.0", "3b:00.0"});
  CHECK(all->bridges == std::vector<std::string>{"05:00.0"});
  auto listed = inv.resolve(c, {"listed", {"18:00.0"}});
  REQUIRE(listed.ok());
  CHECK(listed->gpus == std::vector<std::string>{"18:00.0"});
  CHECK(inv.resolve(c, {"listed", {}})->empty());
  CHECK(inv.resolve(GpuConfig{}, {"listed", {}}).ok());
  CHECK(inv.resolve(GpuConfig{}, {"listed", {"18:00.0"}}).error().message == "GPU is not enabled");
  CHECK(inv.resolve(c, {"", {}}).error().message == "Invalid GPU attach mode: ");
  CHECK(inv.resolve(c, {"some", {}}).error().message == "Invalid GPU attach mode: some");
  CHECK(inv.resolve(c, {"listed", {"99:00.0"}}).error().message == "GPU 99:00.0 not found");
  CHECK(inv.resolve(c, {"listed", {"3b:00.0"}}).error().message ==
        "GPU 3b:00.0 is not offered for passthrough (see [cvm.gpu] listing, include and exclude)");
  CHECK(inv.resolve(c, {"listed", {"18:00.0", "18:00.0"}}).error().message == "GPU 18:00.0 is listed twice");
  c.allow_attach_all = false;
  CHECK(inv.resolve(c, {"all", {}}).error().message == "Attaching all GPUs is not allowed");
}

TEST_CASE("a GPU given to one VM is refused to another", "[gpu]") {
  std::map<std::string, GpuSelection> held{{"vm-a", {"listed", {"18:00.0"}, {}}},
                                           {"vm-b", {"all", {"3b:00.0"}, {"05:00.0"}}}};
  CHECK(GpuInventory::check_free("vm-c", {"listed", {"2a:00.0"}, {}}, held).ok());
  CHECK(GpuInventory::check_free("vm-a", {"listed", {"18:00.0"}, {}}, held).ok());
  auto s = GpuInventory::check_free("vm-c", {"listed", {"18:00.0"}, {}}, held);
  CHECK(s.error().code == ErrorCode::kAlreadyExists);
  CHECK(s.error().message == "GPU 18:00.0 is already attached to VM vm-a");
  CHECK(GpuInventory::check_free("vm-c", {"all", {}, {"05:00.0"}}, held).error().message ==
        "GPU 05:00.0 is already attached to VM vm-b");
}
