// SPDX-License-Identifier: Apache-2.0
#include "task_pool.hpp"

#include "admission.hpp"
#include "head_limit.hpp"

namespace dstackvmm::daemon {

void TaskPool::enqueue(std::function<void()> fn) {
  // Called by the listen loop right after its accept(): the slot that accept took for the
  // connection's peer goes back when the connection's job ends.
  admission::Connection c = admission::take_accepted();
  bool queued = pool_.post([fn = std::move(fn), c] {
    admission::set_current(c);
    head_limit::begin_head();  // each connection's first request head is counted (head_limit.hpp)
    fn();
    head_limit::end_head();
    admission::set_current({});
    admission::release(c.peer);
  });
  if (!queued) admission::release(c.peer);  // shutting down: the connection is dropped
}

}  // namespace dstackvmm::daemon
