// SPDX-License-Identifier: Apache-2.0
// Does KVM run guests here? Asked of a child process with a deadline (host_check.cpp).
#pragma once

#include <chrono>
#include <string>

#include "qemu/host_probe.hpp"

namespace dstackvmm::internal {

// Whether <dev>/kvm really runs a guest: a child process opens it, builds a one-page VM that
// executes `hlt` and runs it; a host whose /dev/kvm opens but whose (nested) guests hang is
// told apart by the deadline. `detail` says what was found, in words for a report.
struct KvmProbe {
  bool works = false;
  bool device_opens = false;
  std::string detail;
};
KvmProbe probe_kvm(const HostRoots& roots, std::chrono::milliseconds timeout);
}  // namespace dstackvmm::internal
