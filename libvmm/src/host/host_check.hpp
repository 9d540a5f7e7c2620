// SPDX-License-Identifier: Apache-2.0
// The host check's judgement (VmManager::check_host gathers the facts the engine holds and
// calls it): what this host offers against what the config asks. Reads the injected roots,
// runs QEMU only to ask what it supports, probes KVM in a child with a deadline and service
// URLs with a short connect.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/gpu_inventory.hpp>
#include <dstackvmm/host_check.hpp>
#include <dstackvmm/qemu_command.hpp>

#include "host/host_probe.hpp"

namespace dstackvmm::internal {

// What the engine knows that the checks need, taken at one moment.
struct HostFacts {
  const Config& config;
  HostRoots roots;
  std::filesystem::path sysfs_root;
  std::string qemu;  // "" when none was found
  Accel accel = Accel::kTcg;
  Platform platform = Platform::kNone;
  std::filesystem::path cid_registry;  // "" without a host-wide registry
  uint32_t cids_used = 0, cids_total = 0;
  std::set<std::pair<std::string, uint32_t>> ports_ours;  // (protocol, host port): our VMs' and the daemon's own
  std::vector<PciDevice> offered_gpus;
  bool state_ok = true;
  std::string state_error;
  uint64_t state_free_bytes = 0;
};

HostReport inspect_host(const HostFacts& facts, std::stop_token stop);

}  // namespace dstackvmm::internal
