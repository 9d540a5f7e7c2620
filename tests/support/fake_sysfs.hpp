// SPDX-License-Identifier: Apache-2.0
// A fake /sys/bus/pci/devices tree, laid out as the kernel does, for GPU discovery tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace dstackvmm::testing {

struct FakePci {
  std::string address;  // "0000:18:00.0"
  std::string vendor;   // "10de"
  std::string device;   // "2335"
  std::string cls;      // "0x030200"
  bool bus_master = false;
  std::string driver = "vfio-pci";
  int iommu_group = 1;
  int numa_node = -1;
};

// A host NUMA node with its CPUs and free 2 MiB huge pages (nr = reserved, free = unused).
inline void add_numa_node(const std::filesystem::path& sysfs, int node, const std::string& cpulist, int nr_2m, int free_2m) {
  namespace fs = std::filesystem;
  fs::path dir = sysfs / "devices/system/node" / ("node" + std::to_string(node));
  fs::create_directories(dir / "hugepages/hugepages-2048kB");
  std::ofstream(dir / "cpulist") << cpulist << "\n";
  std::ofstream(dir / "hugepages/hugepages-2048kB/nr_hugepages") << nr_2m << "\n";
  std::ofstream(dir / "hugepages/hugepages-2048kB/free_hugepages") << free_2m << "\n";
}

// The host-wide huge page counts (/sys/kernel/mm/hugepages).
inline void set_host_hugepages(const std::filesystem::path& sysfs, int nr_2m, int free_2m) {
  namespace fs = std::filesystem;
  fs::path dir = sysfs / "kernel/mm/hugepages/hugepages-2048kB";
  fs::create_directories(dir);
  std::ofstream(dir / "nr_hugepages") << nr_2m << "\n";
  std::ofstream(dir / "free_hugepages") << free_2m << "\n";
}

inline void add_pci_device(const std::filesystem::path& sysfs, const FakePci& d) {
  namespace fs = std::filesystem;
  fs::path dir = sysfs / "bus/pci/devices" / d.address;
  fs::create_directories(dir);
  std::ofstream(dir / "vendor") << "0x" << d.vendor << "\n";
  std::ofstream(dir / "device") << "0x" << d.device << "\n";
  std::ofstream(dir / "class") << d.cls << "\n";
  std::ofstream(dir / "numa_node") << d.numa_node << "\n";
  std::string config(64, '\0');
  config[0] = static_cast<char>(std::stoi(d.vendor.substr(2, 2), nullptr, 16));
  config[4] = d.bus_master ? 0x06 : 0x02;  // command register: memory space, bus master
  std::ofstream(dir / "config", std::ios::binary) << config;
  fs::create_directories(sysfs / "bus/pci/drivers" / d.driver);
  fs::create_directories(sysfs / "kernel/iommu_groups" / std::to_string(d.iommu_group));
  if (!d.driver.empty()) fs::create_directory_symlink("../../../bus/pci/drivers/" + d.driver, dir / "driver");
  fs::create_directory_symlink("../../../kernel/iommu_groups/" + std::to_string(d.iommu_group), dir / "iommu_group");
}

}  // namespace dstackvmm::testing
