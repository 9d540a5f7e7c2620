// SPDX-License-Identifier: Apache-2.0
// The daemon's request threads: the library's pooled task queue (server/task_queue.hpp), with
// each connection's admission slot and head limit around its job.
#pragma once

#include <chrono>
#include <functional>

#include "server/task_queue.hpp"

namespace dstackvmm::daemon {

class TaskPool : public server::PooledTaskQueue {
 public:
  using PooledTaskQueue::PooledTaskQueue;
  void enqueue(std::function<void()> fn) override;
};

}  // namespace dstackvmm::daemon
