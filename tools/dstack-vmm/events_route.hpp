// SPDX-License-Identifier: Apache-2.0
// GET /events: the manager's journal (vm_activity.hpp) as Server-Sent Events.
#pragma once

#include <atomic>

#include <httplib.h>

#include <dstackvmm/vm_manager.hpp>

#include "logs_route.hpp"

namespace dstackvmm::daemon {

// `?vm=ID` one VM only; `Last-Event-ID` (or `?since=SEQ`) resumes after that entry;
// `?follow=false` sends what the journal holds and ends. Followers hold a FollowerSlot and
// end when `stopping` is set.
void serve_events(const VmManager& vmm, FollowerSlots& slots, const std::atomic<bool>& stopping,
                  const httplib::Request& req, httplib::Response& res);

}  // namespace dstackvmm::daemon
