// SPDX-License-Identifier: Apache-2.0
// The daemon's request threads: `base` always there, up to `extra` more started only while
// every thread is busy (long-lived streams hold one each) and ended after a quiet spell. An
// idle daemon keeps `base` threads, not base + extra.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace dstackvmm::daemon {

class TaskPool : public httplib::TaskQueue {
 public:
  TaskPool(size_t base, size_t extra, std::chrono::milliseconds idle = std::chrono::seconds(30));
  ~TaskPool() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  size_t threads() const;  // running now

 private:
  void run(size_t key);
  void reap();  // joins threads that ended; caller holds mu_

  const size_t base_, max_;
  const std::chrono::milliseconds idle_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<size_t, std::thread> threads_;
  std::vector<size_t> ended_;
  size_t next_key_ = 0, idle_count_ = 0;
  bool stopping_ = false;
};

}  // namespace dstackvmm::daemon
