// SPDX-License-Identifier: Apache-2.0
// cpp-httplib's task queue as the library's one thread pool (base/job_queue.hpp): `keep`
// threads stay, up to `extra` more start while every thread is busy (long polls and streams
// hold one each) and end after a quiet spell. The daemon's request queue adds admission
// around it; the supervisor serves with it as it is.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

#include <httplib.h>

#include "base/job_queue.hpp"

namespace dstackvmm::server {

class PooledTaskQueue : public httplib::TaskQueue {
 public:
  PooledTaskQueue(size_t keep, size_t extra, std::chrono::milliseconds idle = std::chrono::seconds(30))
      : pool_(std::max<size_t>(1, keep) + extra, std::max<size_t>(1, keep), idle) {}
  ~PooledTaskQueue() override { pool_.shutdown(); }

  void enqueue(std::function<void()> fn) override { (void)pool_.post(std::move(fn)); }
  void shutdown() override { pool_.shutdown(); }

 protected:
  internal::JobQueue pool_;
};

}  // namespace dstackvmm::server
