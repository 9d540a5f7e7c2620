// SPDX-License-Identifier: Apache-2.0
#include "base/job_queue.hpp"

#include <algorithm>
#include <thread>

namespace dstackvmm::internal {

JobQueue::JobQueue(size_t max_threads, size_t keep, std::chrono::milliseconds idle)
    : max_threads_(std::max<size_t>(1, max_threads)), keep_(std::min(keep, std::max<size_t>(1, max_threads))), idle_timeout_(idle) {}

bool JobQueue::post(std::function<void()> job) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  jobs_.push_back(std::move(job));
  // A new thread only when every thread is busy: an idle one takes the job.
  if (idle_ < jobs_.size() && threads_ < max_threads_) {
    ++threads_;
    // Detached: a thread ends by itself (queue empty and beyond `keep`, or shutdown), and
    // shutdown() waits for that, so no finished thread is ever left waiting to be joined.
    std::thread([this] { run(); }).detach();
  } else {
    work_.notify_one();
  }
  return true;
}

void JobQueue::run() {
  std::unique_lock lock(mu_);
  while (true) {
    if (jobs_.empty()) {
      // Beyond `keep`, a thread waits out the idle spell for the next job (a burst then starts
      // no thread per job); without one it ends at once.
      if (stopping_ || (threads_ > keep_ && idle_timeout_.count() == 0)) break;
      ++idle_;
      bool got = work_.wait_for(lock, idle_timeout_, [&] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (!got && threads_ > keep_) break;  // quiet, and beyond those kept
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    job = nullptr;  // what the job holds is let go before it counts as done
    lock.lock();
    --running_;
    done_.notify_all();
  }
  --threads_;
  done_.notify_all();
}

size_t JobQueue::pending() {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

size_t JobQueue::threads() {
  std::lock_guard lock(mu_);
  return threads_;
}

bool JobQueue::wait_threads(size_t n, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return done_.wait_until(lock, deadline, [&] { return threads_ <= n; });
}

void JobQueue::drain() {
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return jobs_.empty() && running_ == 0; });
}

void JobQueue::shutdown() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  work_.notify_all();
  done_.wait(lock, [&] { return threads_ == 0; });
}

}  // namespace dstackvmm::internal
