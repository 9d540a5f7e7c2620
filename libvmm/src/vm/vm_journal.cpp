// SPDX-License-Identifier: Apache-2.0
#include "vm/vm_journal.hpp"

namespace dstackvmm::internal {

uint64_t ActivityJournal::append(VmActivity a) {
  a.seq = next_++;
  ring_.push_back(std::move(a));
  while (ring_.size() > capacity_) ring_.pop_front();
  return ring_.back().seq;
}

VmActivityPage ActivityJournal::read(uint64_t after, size_t max, std::string_view vm_id) const {
  VmActivityPage page;
  page.last_seq = last_seq();
  if (ring_.empty()) return page;
  uint64_t first = ring_.front().seq;
  // A number from before the oldest held (entries were dropped, or it came from an earlier
  // manager) or beyond the newest (another manager's): the reader missed something.
  if (after != 0 && (after + 1 < first || after > page.last_seq)) {
    page.gap = true;
    after = 0;
  }
  size_t start = after < first ? 0 : after - first + 1;
  for (size_t i = start; i < ring_.size() && page.entries.size() < max; ++i)
    if (vm_id.empty() || ring_[i].vm_id == vm_id) page.entries.push_back(ring_[i]);
  return page;
}

std::string_view activity_kind(VmStatus from, VmStatus to) {
  if (from == VmStatus::kUnknown || to == VmStatus::kUnknown) return "status";
  switch (to) {
    case VmStatus::kRunning: return "started";
    case VmStatus::kExited: return "exited";
    case VmStatus::kStopping: return "stopping";
    case VmStatus::kStopped: return "stopped";
    case VmStatus::kRemoving: return "removing";
    case VmStatus::kUnknown: break;
  }
  return "status";
}

}  // namespace dstackvmm::internal
