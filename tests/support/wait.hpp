// SPDX-License-Identifier: Apache-2.0
// Waiting on a condition with a deadline: the only way tests synchronise.
#pragma once

#include <chrono>
#include <thread>

namespace dstackvmm::testing {

template <class Condition>
bool wait_until(Condition cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(50)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return cond();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace dstackvmm::testing
