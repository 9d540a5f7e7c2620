// SPDX-License-Identifier: Apache-2.0
// Background work (removals, image pulls) on at most N threads that exist only while there is
// work: nothing accumulates, however many jobs come (a thread per job that is joined only at
// exit kept ~8 MB of address space per RemoveVm).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace dstackvmm::internal {

class JobQueue {
 public:
  explicit JobQueue(size_t max_threads) : max_threads_(max_threads) {}
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;
  ~JobQueue() { drain(); }

  void post(std::function<void()> job);
  // Waits until every job posted so far has run.
  void drain();
  // Jobs posted and not yet taken by a thread (a job may batch work with those behind it).
  size_t pending();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> jobs_;
  size_t threads_ = 0;
  const size_t max_threads_;
};

}  // namespace dstackvmm::internal
