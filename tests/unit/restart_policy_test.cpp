// SPDX-License-Identifier: Apache-2.0
// The backoff schedule on upstream's reference vectors (vmm-core §6.8).
#include <catch2/catch.hpp>

#include <dstackvmm/restart_policy.hpp>

using namespace dstackvmm;
using Kind = RestartDecision::Kind;

namespace {
AutoRestartConfig policy(uint64_t initial, uint64_t max, uint32_t retries, uint64_t window = 300) {
  AutoRestartConfig c;
  c.initial_backoff = initial;
  c.max_backoff = max;
  c.max_retries = retries;
  c.reset_window = window;
  return c;
}
}  // namespace

TEST_CASE("backoff follows the reference vector", "[restart]") {
  RestartTracker t(policy(2, 5, 3));
  CHECK(t.observe_exited(0) == RestartDecision{Kind::kScheduled, 0, 2});
  CHECK(t.observe_exited(1) == RestartDecision{});
  CHECK(t.observe_exited(2) == RestartDecision{Kind::kRestart, 1, 4});
  CHECK(t.observe_exited(6) == RestartDecision{Kind::kRestart, 2, 5});
  CHECK(t.observe_exited(11) == RestartDecision{Kind::kRestart, 3, 5});
  CHECK(t.observe_exited(12) == RestartDecision{Kind::kExhausted, 3, 0});
  CHECK(t.observe_exited(20) == RestartDecision{});  // exhaustion is reported once
}

TEST_CASE("a healthy run longer than the reset window forgets the attempts", "[restart]") {
  RestartTracker t(policy(2, 5, 3, 10));
  CHECK(t.observe_exited(0).kind == Kind::kScheduled);
  CHECK(t.observe_exited(2) == RestartDecision{Kind::kRestart, 1, 4});
  CHECK_FALSE(t.observe_running(3));
  CHECK_FALSE(t.observe_running(12));
  CHECK(t.observe_running(13));  // 10 s healthy since t3
  CHECK(t.attempts() == 0);
  CHECK(t.observe_exited(14) == RestartDecision{Kind::kScheduled, 0, 2});
}

TEST_CASE("max_retries = 0 reports exhaustion at the first exit", "[restart]") {
  RestartTracker t(policy(5, 300, 0));
  CHECK(t.observe_exited(0) == RestartDecision{Kind::kExhausted, 0, 0});
  t.reset();
  CHECK(t.observe_exited(1).kind == Kind::kExhausted);  // reset re-arms the report
}

TEST_CASE("huge backoffs saturate instead of overflowing", "[restart]") {
  RestartTracker t(policy(1ull << 62, ~0ull, 100));
  t.observe_exited(0);
  CHECK(t.observe_exited(1ull << 62) == RestartDecision{Kind::kRestart, 1, 1ull << 63});
  auto d = t.observe_exited((1ull << 62) + (1ull << 63));
  CHECK(d == RestartDecision{Kind::kRestart, 2, ~0ull});       // 2^64 saturates
  CHECK(t.observe_exited(~0ull - 1) == RestartDecision{});   // and so does the next retry time
}
