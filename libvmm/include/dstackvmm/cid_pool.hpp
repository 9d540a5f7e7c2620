// SPDX-License-Identifier: Apache-2.0
// vsock CIDs for guests: the half-open range [start, start + size). Not thread-safe.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <set>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// The CIDs a VMM hands out. Not thread-safe (VmManager guards its own).
class DSTACKVMM_EXPORT CidPool {
 public:
  CidPool(uint32_t start, uint32_t size);

  // The lowest free CID. kResourceExhausted "CID pool exhausted (N CIDs from S; raise
  // cvm.cid_pool_size)" when none is left.
  Result<uint32_t> allocate();
  // Takes a specific CID (a VM that keeps its CID across restarts). kInvalidArgument when out
  // of range, kAlreadyExists when taken.
  Status occupy(uint32_t cid);
  void release(uint32_t cid);
  bool in_use(uint32_t cid) const { return used_.count(cid) != 0; }
  const std::set<uint32_t>& in_use_set() const { return used_; }
  size_t used() const { return used_.size(); }

 private:
  uint64_t start_, end_;
  std::set<uint32_t> used_;
};

}  // namespace dstackvmm
