// SPDX-License-Identifier: Apache-2.0
// A ProcessLauncher that runs nothing: it records what it was asked to start and reports the
// state the test sets. For VmManager unit tests; real guests are the e2e suite's job.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>

#include <dstackvmm/process_launcher.hpp>

namespace dstackvmm::testing {

class FakeLauncher : public ProcessLauncher {
 public:
  Status start(const ProcessSpec& spec) override {
    if (on_start) on_start(spec);  // (without mu_: it may look at the launcher)
    std::lock_guard l(mu_);
    if (unreachable_) return make_error(ErrorCode::kUnavailable, "fake launcher is unreachable");
    if (fail_start_) return make_error(ErrorCode::kInvalidArgument, "fake launcher refuses to start");
    auto& p = procs_[spec.id];
    if (p.status == ProcessStatus::kRunning) return make_error(ErrorCode::kAlreadyExists, "Process is already running");
    p = ProcessInfo{};
    p.spec = spec;
    p.status = ProcessStatus::kRunning;
    p.started = true;
    p.pid = next_pid_++;
    p.started_at = 1000;
    started_.push_back(spec);
    changed();
    return {};
  }
  Status stop(const std::string& id) override {
    std::lock_guard l(mu_);
    auto it = procs_.find(id);
    if (it == procs_.end()) return make_error(ErrorCode::kNotFound, "Process not found");
    it->second.started = false;
    it->second.status = ProcessStatus::kStopped;
    it->second.stopped_at = 1010;
    changed();
    return {};
  }
  Status remove(const std::string& id) override {
    std::unique_lock l(mu_);
    ++removes_waiting_;
    cv_.notify_all();
    cv_.wait(l, [&] { return !hold_removes_; });
    --removes_waiting_;
    if (!procs_.erase(id)) return make_error(ErrorCode::kNotFound, "Process not found");
    changed();
    return {};
  }
  Result<std::optional<ProcessInfo>> info(const std::string& id) override {
    std::lock_guard l(mu_);
    ++info_reads_;
    if (unreachable_) return make_error(ErrorCode::kUnavailable, "fake launcher is unreachable");
    auto it = procs_.find(id);
    if (it == procs_.end()) return std::optional<ProcessInfo>();
    return std::optional<ProcessInfo>(it->second);
  }
  Result<std::vector<ProcessInfo>> list() override {  // also the whole table changes() gives
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return !hold_lists_; });
    if (unreachable_) return make_error(ErrorCode::kUnavailable, "fake launcher is unreachable");
    std::vector<ProcessInfo> out;
    for (auto& [id, p] : procs_) out.push_back(p);
    return out;
  }
  Result<std::vector<ProcessInfo>> running() override {
    std::lock_guard l(mu_);
    ++running_reads_;
    if (unreachable_) return make_error(ErrorCode::kUnavailable, "fake launcher is unreachable");
    std::vector<ProcessInfo> out;
    for (auto& [id, p] : procs_)
      if (p.status == ProcessStatus::kRunning) out.push_back(p);
    return out;
  }
  Result<uint64_t> wait_change(uint64_t generation, std::chrono::milliseconds timeout) override {
    std::unique_lock l(mu_);
    uint64_t cancels = cancels_;
    cv_.wait_for(l, timeout, [&] { return generation_ != generation || unreachable_ || cancels_ != cancels; });
    if (unreachable_) return make_error(ErrorCode::kUnavailable, "fake launcher is unreachable");
    return generation_;
  }
  bool cancel_waits() override {
    std::lock_guard l(mu_);
    ++cancels_;
    cv_.notify_all();
    return true;
  }

  // Test controls.
  // Called at each start, before the process "runs": what the test wants to see at that moment.
  std::function<void(const ProcessSpec&)> on_start;
  size_t info_reads() {
    std::lock_guard l(mu_);
    return info_reads_;
  }
  // An entry as another VMM's supervisor holds it (running, with its own spec).
  void seed(ProcessInfo p) {
    std::lock_guard l(mu_);
    procs_[p.spec.id] = std::move(p);
    changed();
  }
  void exit_on_its_own(const std::string& id) {
    std::lock_guard l(mu_);
    procs_[id].status = ProcessStatus::kExited;
    procs_[id].stopped_at = 1005;
    procs_[id].wait_status = 1 << 8;  // exit(1)
    changed();
  }
  // A launcher that cannot answer (a supervisor killed or stopped).
  void set_unreachable(bool unreachable) {
    std::lock_guard l(mu_);
    unreachable_ = unreachable;
    changed();
  }
  void fail_starts(bool fail) {
    std::lock_guard l(mu_);
    fail_start_ = fail;
  }
  // While held, remove() waits (a burst of removals then queues up behind the first ones).
  void hold_removes(bool hold) {
    std::lock_guard l(mu_);
    hold_removes_ = hold;
    cv_.notify_all();
  }
  // While held, list() and the whole-table changes() wait; running() answers.
  void hold_lists(bool hold) {
    std::lock_guard l(mu_);
    hold_lists_ = hold;
    cv_.notify_all();
  }
  size_t running_reads() {
    std::lock_guard l(mu_);
    return running_reads_;
  }
  size_t removes_waiting() {
    std::lock_guard l(mu_);
    return removes_waiting_;
  }
  std::vector<ProcessSpec> started() {
    std::lock_guard l(mu_);
    return started_;
  }

 private:
  void changed() {  // caller holds mu_
    ++generation_;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 1, cancels_ = 0;
  bool unreachable_ = false;
  std::map<std::string, ProcessInfo> procs_;
  std::vector<ProcessSpec> started_;
  bool fail_start_ = false;
  bool hold_removes_ = false;
  bool hold_lists_ = false;
  size_t running_reads_ = 0;
  size_t info_reads_ = 0;
  size_t removes_waiting_ = 0;
  int next_pid_ = 4242;
};

}  // namespace dstackvmm::testing
