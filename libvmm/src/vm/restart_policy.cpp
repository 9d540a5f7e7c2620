// SPDX-License-Identifier: Apache-2.0
// Auto-restart with exponential backoff: a pure state machine per VM.
#include <dstackvmm/restart_policy.hpp>

#include <algorithm>
#include <limits>

namespace dstackvmm {

namespace {
uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}
}  // namespace

bool RestartTracker::observe_running(uint64_t now) {
  if (!healthy_since_) healthy_since_ = now;
  if (attempts_ > 0 && now - *healthy_since_ >= config_.reset_window) {
    reset();
    healthy_since_ = now;
    return true;
  }
  return false;
}

RestartDecision RestartTracker::observe_exited(uint64_t now) {
  using Kind = RestartDecision::Kind;
  healthy_since_.reset();
  if (attempts_ >= config_.max_retries) {
    if (exhausted_reported_) return {};
    exhausted_reported_ = true;
    return {Kind::kExhausted, attempts_, 0};
  }
  if (!next_retry_) {
    next_retry_ = saturating_add(now, config_.initial_backoff);
    return {Kind::kScheduled, 0, config_.initial_backoff};
  }
  if (now < *next_retry_) return {};
  ++attempts_;
  // initial * 2^attempts, saturating, capped by max_backoff.
  uint64_t delay = config_.initial_backoff;
  for (uint32_t i = 0; i < std::min<uint32_t>(attempts_, 63) && delay < config_.max_backoff; ++i)
    delay = delay > std::numeric_limits<uint64_t>::max() / 2 ? std::numeric_limits<uint64_t>::max() : delay * 2;
  delay = std::min(delay, config_.max_backoff);
  next_retry_ = saturating_add(now, delay);
  return {Kind::kRestart, attempts_, delay};
}

void RestartTracker::reset() {
  attempts_ = 0;
  next_retry_.reset();
  healthy_since_.reset();
  exhausted_reported_ = false;
}

}  // namespace dstackvmm
