// SPDX-License-Identifier: Apache-2.0
#include "task_pool.hpp"

#include "admission.hpp"
#include "head_limit.hpp"

namespace dstackvmm::daemon {

TaskPool::TaskPool(size_t base, size_t extra, std::chrono::milliseconds idle)
    : base_(std::max<size_t>(1, base)), max_(std::max<size_t>(1, base) + extra), idle_(idle) {}

TaskPool::~TaskPool() { shutdown(); }

void TaskPool::enqueue(std::function<void()> fn) {
  // Called by the listen loop right after its accept(): the slot that accept took for the
  // connection's peer goes back when the connection's job ends.
  admission::Connection c = admission::take_accepted();
  std::lock_guard lock(mu_);
  if (stopping_) {
    admission::release(c.peer);
    return;
  }
  reap();
  jobs_.push_back([fn = std::move(fn), c] {
    admission::set_current(c);
    fn();
    admission::set_current({});
    admission::release(c.peer);
  });
  // A queued job waits only when every thread is busy and the pool is full.
  if (idle_count_ < jobs_.size() && threads_.size() < max_) {
    size_t key = next_key_++;
    threads_.emplace(key, std::thread([this, key] { run(key); }));
  } else {
    cv_.notify_one();
  }
}

void TaskPool::run(size_t key) {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_count_;
    bool got = cv_.wait_for(lock, idle_, [&] { return stopping_ || !jobs_.empty(); });
    --idle_count_;
    if (stopping_ && jobs_.empty()) break;
    if (!got) {
      if (threads_.size() - ended_.size() > base_) break;  // quiet, and beyond the base
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    // Each connection's first request head is counted (head_limit.hpp).
    head_limit::begin_head();
    job();
    head_limit::end_head();
    lock.lock();
  }
  ended_.push_back(key);
}

void TaskPool::reap() {
  for (size_t key : ended_) {
    auto it = threads_.find(key);
    if (it == threads_.end()) continue;
    it->second.join();  // it has left run(): the join does not wait on work
    threads_.erase(it);
  }
  ended_.clear();
}

void TaskPool::shutdown() {
  std::map<size_t, std::thread> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    all.swap(threads_);
    ended_.clear();
  }
  cv_.notify_all();
  for (auto& [key, t] : all) t.join();
}

size_t TaskPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size() - ended_.size();
}

}  // namespace dstackvmm::daemon
