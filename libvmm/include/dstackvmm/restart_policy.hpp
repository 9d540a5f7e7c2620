// SPDX-License-Identifier: Apache-2.0
// Auto-restart with exponential backoff: a pure state machine per VM, fed with observations and
// the time (seconds), so the schedule is testable without clocks or processes.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>

#include <dstackvmm/config.hpp>

namespace dstackvmm {

struct DSTACKVMM_EXPORT RestartDecision {
  enum class Kind {
    kWait,       // nothing to do now
    kScheduled,  // first exit seen: a restart is due after `delay`
    kRestart,    // restart now (attempt number `attempt`); the next one is not before `delay`
    kExhausted,  // max_retries used up (reported once)
  };
  Kind kind = Kind::kWait;
  uint32_t attempt = 0;
  uint64_t delay = 0;
  bool operator==(const RestartDecision&) const = default;
};

// Upstream's policy (vmm-core §6.8): after the first exit wait initial_backoff, then restart
// with delays initial_backoff * 2^attempt capped at max_backoff, at most max_retries times;
// a healthy run of reset_window seconds forgets the attempts. Not thread-safe.
class DSTACKVMM_EXPORT RestartTracker {
 public:
  explicit RestartTracker(const AutoRestartConfig& config) : config_(config) {}

  // The process is running at `now`. Returns true when this run reset the attempt count.
  bool observe_running(uint64_t now);
  // The process is gone while the VM should run.
  RestartDecision observe_exited(uint64_t now);
  // A user's start, stop or remove: start over.
  void reset();

  uint32_t attempts() const { return attempts_; }

 private:
  AutoRestartConfig config_;
  uint32_t attempts_ = 0;
  std::optional<uint64_t> next_retry_;
  std::optional<uint64_t> healthy_since_;
  bool exhausted_reported_ = false;
};

}  // namespace dstackvmm
