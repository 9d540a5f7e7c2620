// SPDX-License-Identifier: Apache-2.0
// GET /logs: a VM's serial/stdout/stderr as a text stream (tail, follow, heartbeat, ansi).
#pragma once

#include <httplib.h>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::daemon {

void serve_logs(const VmManager& vmm, const httplib::Request& req, httplib::Response& res);

}  // namespace dstackvmm::daemon
