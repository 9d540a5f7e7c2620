// SPDX-License-Identifier: Apache-2.0
// The ring behind VmManager::activity(): appended under the manager's lock, read by readers
// that wait on the manager's condition variable. Not thread-safe on its own.
#pragma once

#include <deque>
#include <string_view>

#include <dstackvmm/vm_activity.hpp>
#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::internal {

class ActivityJournal {
 public:
  // `first_seq` numbers the first entry; at most `capacity` entries are kept (oldest dropped).
  ActivityJournal(uint64_t first_seq, size_t capacity) : next_(first_seq), capacity_(capacity ? capacity : 1) {}

  uint64_t append(VmActivity a);  // numbers it and stamps nothing else; returns its seq
  // Up to `max` entries after `after` (of `vm_id` only, unless empty). after = 0: from the oldest.
  VmActivityPage read(uint64_t after, size_t max, std::string_view vm_id) const;
  uint64_t last_seq() const { return ring_.empty() ? 0 : ring_.back().seq; }

 private:
  std::deque<VmActivity> ring_;
  uint64_t next_;
  size_t capacity_;
};

// The journal kind of a change of status: "started" for anything that becomes running, and
// so on; "status" when the change says nothing a reader acts on (e.g. to or from unknown).
std::string_view activity_kind(VmStatus from, VmStatus to);

}  // namespace dstackvmm::internal
