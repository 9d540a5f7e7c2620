// SPDX-License-Identifier: Apache-2.0
// VmManager::check_host(): the facts the manager holds (CIDs, ports, GPUs, the state folder),
// taken at one moment, handed to the host check (host/host_check.cpp).
#include <dstackvmm/vm_manager.hpp>

#include "host/host_check.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

HostReport VmManager::check_host(std::stop_token stop) const {
  const Impl& im = *impl_;
  const Config& c = im.opt.config;
  internal::HostFacts facts{.config = c, .roots = im.roots, .sysfs_root = im.opt.sysfs_root, .qemu = im.qemu,
                            .accel = im.accel, .platform = im.platform, .cid_registry = im.opt.cid_registry};
  ManagerStats st = stats();
  facts.cids_used = st.cids_used;
  facts.cids_total = st.cids_total;
  {
    std::lock_guard lock(im.mu);
    for (const auto& [id, vm] : im.vms)
      for (const auto& p : vm->manifest.port_map) facts.ports_ours.insert({p.protocol, p.host_port});
  }
  facts.ports_ours.insert({"tcp", c.port});  // the daemon's own API port
  if (c.cvm.gpu.enabled) facts.offered_gpus = offered_gpus();
  ManagerHealth h = health();
  facts.state_ok = h.state_ok;
  facts.state_error = h.state_error;
  facts.state_free_bytes = h.state_free_bytes;
  return internal::inspect_host(facts, stop);
}

}  // namespace dstackvmm
