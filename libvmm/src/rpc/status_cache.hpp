// SPDX-License-Identifier: Apache-2.0
// Status replies at scale: each VM's brief JSON is encoded once and reused while the VM is
// unchanged (its VmInfo compares equal field by field), so a listing of a thousand VMs that
// did not change is a concatenation, not a thousand JSON trees built, printed and freed.
// The reply is byte for byte what the tree encoder gives (keys in the same order).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::rpc {

class StatusCache {
 public:
  // The JSON text of a StatusResponse holding `page` (brief). `every_vm`: the page holds every
  // VM of the manager (no filter, no paging), so entries of VMs not in it can go.
  std::string brief_reply(const VmPage& page, bool port_mapping_enabled, bool every_vm);
  size_t size() const;
  uint64_t encoded() const;  // VMs encoded since construction (the misses), for tests

 private:
  struct Entry {
    VmInfo info;
    std::string text;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  uint64_t encoded_ = 0;
};

}  // namespace dstackvmm::rpc
