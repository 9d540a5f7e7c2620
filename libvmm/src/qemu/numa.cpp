// SPDX-License-Identifier: Apache-2.0
// NUMA placement and huge pages, read from sysfs (tests pass a fake tree).
#include <dstackvmm/qemu_command.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

#include "base/fs_util.hpp"
#include "base/text_util.hpp"

namespace dstackvmm {

namespace fs = std::filesystem;

namespace {

std::optional<uint64_t> read_number(const fs::path& p) {
  std::string s = internal::read_attribute(p);
  if (!all_digits(s) || s.size() > 19) return std::nullopt;
  return std::stoull(s);
}

uint32_t gpu_node(const fs::path& sysfs, const std::string& slot) {
  auto node = read_number(sysfs / "bus/pci/devices" / ("0000:" + slot) / "numa_node");
  // -1 (no NUMA information) or missing: node 0, as upstream
  return node && *node < (1u << 16) ? static_cast<uint32_t>(*node) : 0;
}

// Free huge pages in bytes, and whether any are configured at all, under one hugepages folder.
std::pair<uint64_t, uint64_t> huge_pages(const fs::path& dir) {
  uint64_t free_bytes = 0, total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();  // hugepages-2048kB
    if (name.rfind("hugepages-", 0) != 0 || name.size() < 13 || name.substr(name.size() - 2) != "kB") continue;
    std::string kb = name.substr(10, name.size() - 12);
    if (!all_digits(kb) || kb.size() > 12) continue;
    uint64_t size = std::stoull(kb) * 1024;
    free_bytes += read_number(e.path() / "free_hugepages").value_or(0) * size;
    total += read_number(e.path() / "nr_hugepages").value_or(0) * size;
  }
  return {free_bytes, total};
}

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

Result<NumaPlacement> resolve_numa(const fs::path& sysfs_root, const VmManifest& m) {
  NumaPlacement out;
  std::vector<std::string> gpus = m.gpus ? m.gpus->gpus : std::vector<std::string>{};
  for (const auto& slot : gpus) {
    bool ok = !slot.empty() && slot.size() <= 16 &&
              std::all_of(slot.begin(), slot.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; });
    if (!ok) return make_error(ErrorCode::kInvalidArgument, "Invalid device string: " + slot);
    out.gpu_host_node[slot] = gpu_node(sysfs_root, slot);
  }
  if (m.hugepages) {
    std::map<uint32_t, uint32_t> per_node;
    for (const auto& [slot, node] : out.gpu_host_node) ++per_node[node];
    if (per_node.empty()) per_node[0] = 0;
    for (const auto& [node, count] : per_node) out.nodes.push_back({node, count});
  }
  if (m.pin_numa) {
    uint32_t node = gpus.empty() ? 0 : out.gpu_host_node[gpus.front()];
    fs::path list = sysfs_root / "devices/system/node" / ("node" + std::to_string(node)) / "cpulist";
    out.pin_cpus = internal::read_attribute(list);
    bool ok = !out.pin_cpus.empty() && std::all_of(out.pin_cpus.begin(), out.pin_cpus.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || c == ',' || c == '-';
    });
    if (!ok)
      return make_error(ErrorCode::kFailedPrecondition, "pin_numa: cannot read the CPUs of NUMA node " + std::to_string(node) +
                                                            " from " + list.string() + "; deploy without --pin-numa on this host");
  }
  return out;
}

uint32_t effective_vcpus(const VmManifest& m, const NumaPlacement& numa) {
  uint32_t vcpu = std::max<uint32_t>(1, m.vcpu);
  if (!m.hugepages || numa.nodes.empty()) return vcpu;
  uint32_t n = static_cast<uint32_t>(numa.nodes.size());
  return (vcpu + n - 1) / n * n;
}

uint64_t effective_memory_mb(const VmManifest& m, const NumaPlacement& numa) {
  if (!m.hugepages || numa.nodes.empty()) return m.memory;
  uint64_t n = numa.nodes.size();
  uint64_t gib = (uint64_t{m.memory} / 1024 + n - 1) / n * n;
  return gib * 1024;
}

Status check_hugepages(const fs::path& sysfs_root, const VmManifest& m, const NumaPlacement& numa) {
  if (!m.hugepages) return {};
  auto fail = [](std::string why) { return make_error(ErrorCode::kFailedPrecondition, std::move(why)); };
  if (numa.nodes.empty()) return fail("hugepages: no NUMA placement was resolved");
  uint64_t mem = effective_memory_mb(m, numa);
  if (mem == 0) return fail("hugepages: memory is given in whole GiB per NUMA node; ask for at least " +
                            std::to_string(numa.nodes.size() * 1024) + " MB");
  uint64_t per_node = (mem << 20) / numa.nodes.size();
  auto [host_free, host_total] = huge_pages(sysfs_root / "kernel/mm/hugepages");
  if (host_total == 0)
    return fail("hugepages: the host has no huge pages reserved; reserve them (for example "
                "echo 1024 > /proc/sys/vm/nr_hugepages, or hugepages= on the kernel command line) "
                "or deploy without --hugepages");
  uint64_t wanted = 0;
  for (const auto& node : numa.nodes) {
    fs::path dir = sysfs_root / "devices/system/node" / ("node" + std::to_string(node.host_node)) / "hugepages";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      wanted += per_node;  // no per-node counts: the host totals decide below
      continue;
    }
    auto [free_bytes, total] = huge_pages(dir);
    if (free_bytes < per_node)
      return fail("hugepages: NUMA node " + std::to_string(node.host_node) + " has " + mib(free_bytes) +
                  " of huge pages free, the VM needs " + mib(per_node) + " there; free or reserve more, or deploy with less memory");
  }
  if (wanted > host_free)
    return fail("hugepages: the host has " + mib(host_free) + " of huge pages free, the VM needs " + mib(wanted) +
                "; free or reserve more, or deploy with less memory");
  return {};
}

}  // namespace dstackvmm
