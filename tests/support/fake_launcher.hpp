// SPDX-License-Identifier: Apache-2.0
// A ProcessLauncher that runs nothing: it records what it was asked to start and reports the
// state the test sets. For VmManager unit tests; real guests are the e2e suite's job.
#pragma once

#include <mutex>

#include <dstackvmm/process_launcher.hpp>

namespace dstackvmm::testing {

class FakeLauncher : public ProcessLauncher {
 public:
  Status start(const ProcessSpec& spec) override {
    std::lock_guard l(mu_);
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
    return {};
  }
  Status stop(const std::string& id) override {
    std::lock_guard l(mu_);
    auto it = procs_.find(id);
    if (it == procs_.end()) return make_error(ErrorCode::kNotFound, "Process not found");
    it->second.started = false;
    it->second.status = ProcessStatus::kStopped;
    it->second.stopped_at = 1010;
    return {};
  }
  Status remove(const std::string& id) override {
    std::lock_guard l(mu_);
    if (!procs_.erase(id)) return make_error(ErrorCode::kNotFound, "Process not found");
    return {};
  }
  std::optional<ProcessInfo> info(const std::string& id) override {
    std::lock_guard l(mu_);
    auto it = procs_.find(id);
    if (it == procs_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<ProcessInfo> list() override {
    std::lock_guard l(mu_);
    std::vector<ProcessInfo> out;
    for (auto& [id, p] : procs_) out.push_back(p);
    return out;
  }

  // Test controls.
  void exit_on_its_own(const std::string& id) {
    std::lock_guard l(mu_);
    procs_[id].status = ProcessStatus::kExited;
    procs_[id].stopped_at = 1005;
  }
  void fail_starts(bool fail) {
    std::lock_guard l(mu_);
    fail_start_ = fail;
  }
  std::vector<ProcessSpec> started() {
    std::lock_guard l(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, ProcessInfo> procs_;
  std::vector<ProcessSpec> started_;
  bool fail_start_ = false;
  int next_pid_ = 4242;
};

}  // namespace dstackvmm::testing
