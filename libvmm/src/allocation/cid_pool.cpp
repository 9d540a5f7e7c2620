// SPDX-License-Identifier: Apache-2.0
// vsock CIDs for guests: the half-open range [start, start + size).
#include <dstackvmm/cid_pool.hpp>

#include <string>

namespace dstackvmm {

CidPool::CidPool(uint32_t start, uint32_t size) : start_(start), end_(uint64_t{start} + size) {}

Result<uint32_t> CidPool::allocate() {
  uint64_t cid = start_;
  for (uint32_t u : used_) {  // ordered: the first gap is the lowest free CID
    if (u < cid) continue;
    if (u != cid) break;
    ++cid;
  }
  if (cid >= end_)
    return make_error(ErrorCode::kResourceExhausted,
                      "CID pool exhausted (" + std::to_string(end_ - start_) + " CIDs from " +
                          std::to_string(start_) + "; raise cvm.cid_pool_size)");
  used_.insert(static_cast<uint32_t>(cid));
  return static_cast<uint32_t>(cid);
}

Status CidPool::occupy(uint32_t cid) {
  if (cid < start_ || cid >= end_)
    return make_error(ErrorCode::kInvalidArgument,
                      "CID " + std::to_string(cid) + " is outside the pool " + std::to_string(start_) +
                          ".." + std::to_string(end_ - 1));
  if (!used_.insert(cid).second)
    return make_error(ErrorCode::kAlreadyExists, "CID " + std::to_string(cid) + " is already in use");
  return {};
}

void CidPool::release(uint32_t cid) { used_.erase(cid); }

}  // namespace dstackvmm
