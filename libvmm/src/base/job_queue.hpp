// SPDX-License-Identifier: Apache-2.0
// The library's one thread pool: jobs run on at most `max_threads` threads, of which `keep`
// stay for the next job and the rest end after `idle` without one. Background work (removals,
// image pulls, launch records) keeps none: its threads exist only while there is work, so
// nothing accumulates however many jobs come (a thread per job joined only at exit kept ~8 MB
// of address space per RemoveVm). The daemon's request threads keep a few and grow while every
// thread is busy (long-lived streams hold one each), so an idle daemon holds `keep`, not `max`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace dstackvmm::internal {

class JobQueue {
 public:
  explicit JobQueue(size_t max_threads, size_t keep = 0, std::chrono::milliseconds idle = std::chrono::milliseconds(0));
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;
  ~JobQueue() { shutdown(); }

  // False (and the job dropped) once shutdown() began.
  bool post(std::function<void()> job);
  // Waits until every job posted so far has run.
  void drain();
  // Runs every job already posted, refuses new ones, and waits until every thread has ended.
  void shutdown();
  // Jobs posted and not yet taken by a thread (a job may batch work with those behind it).
  size_t pending();
  size_t threads();  // running now, busy or idle
  // Waits until at most `n` threads run; false at the deadline.
  bool wait_threads(size_t n, std::chrono::steady_clock::time_point deadline);

 private:
  void run();

  std::mutex mu_;
  std::condition_variable work_;  // a job came, or shutdown
  std::condition_variable done_;  // a job ended, or a thread
  std::deque<std::function<void()>> jobs_;
  size_t threads_ = 0, idle_ = 0, running_ = 0;
  bool stopping_ = false;
  const size_t max_threads_, keep_;
  const std::chrono::milliseconds idle_timeout_;
};

}  // namespace dstackvmm::internal
