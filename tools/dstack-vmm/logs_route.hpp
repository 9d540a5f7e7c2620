// SPDX-License-Identifier: Apache-2.0
// GET /logs: a VM's serial/stdout/stderr as a text stream (tail, follow, heartbeat, ansi).
#pragma once

#include <atomic>
#include <memory>

#include <httplib.h>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::daemon {

// Long-lived streams get threads of their own, beyond the request workers, and at most
// `capacity` ([max_blocking]) at once: followers can never starve Version, Status or the console.
class FollowerSlots {
 public:
  explicit FollowerSlots(int capacity) : capacity_(capacity) {}
  int capacity() const { return capacity_; }
  // A slot held for as long as the returned token lives; null when all are taken.
  std::shared_ptr<void> try_acquire();

 private:
  int capacity_;
  std::shared_ptr<std::atomic<int>> used_ = std::make_shared<std::atomic<int>>(0);
};

void serve_logs(const VmManager& vmm, FollowerSlots& slots, const httplib::Request& req, httplib::Response& res);

}  // namespace dstackvmm::daemon
