// SPDX-License-Identifier: Apache-2.0
// The daemon's request threads, as cpp-httplib's task queue: the library's thread pool
// (base/job_queue.hpp) keeping `base` threads and growing by up to `extra` while every thread
// is busy, with each connection's admission slot and head limit around its job.
#pragma once

#include <chrono>
#include <functional>

#include <httplib.h>

#include "base/job_queue.hpp"

namespace dstackvmm::daemon {

class TaskPool : public httplib::TaskQueue {
 public:
  TaskPool(size_t base, size_t extra, std::chrono::milliseconds idle = std::chrono::seconds(30));
  ~TaskPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  void shutdown() override { pool_.shutdown(); }

 private:
  internal::JobQueue pool_;
};

}  // namespace dstackvmm::daemon
