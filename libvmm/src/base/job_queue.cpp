// SPDX-License-Identifier: Apache-2.0
#include "base/job_queue.hpp"

#include <thread>

namespace dstackvmm::internal {

void JobQueue::post(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  if (threads_ < max_threads_) {
    ++threads_;
    // Detached: a thread ends by itself when the queue is empty, and drain() waits for that,
    // so no finished thread is ever left waiting to be joined.
    std::thread([this] { run(); }).detach();
  }
}

void JobQueue::run() {
  std::unique_lock lock(mu_);
  while (!jobs_.empty()) {
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
  --threads_;
  idle_.notify_all();
}

size_t JobQueue::pending() {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void JobQueue::drain() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return threads_ == 0; });
}

}  // namespace dstackvmm::internal
