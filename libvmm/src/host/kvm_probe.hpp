// SPDX-License-Identifier: Apache-2.0
// Does KVM run guests here? Asked of a child process with a deadline (host_check.cpp).
#pragma once

#include <chrono>
#include <stop_token>
#include <string>

#include "host/host_probe.hpp"

namespace dstackvmm::internal {

// Whether <dev>/kvm really runs a guest: a child process opens it, builds a one-page VM that
// executes `hlt` and runs it; a host whose /dev/kvm opens but whose (nested) guests hang is
// told apart by the deadline. `detail` says what was found, in words for a report.
struct KvmProbe {
  bool works = false;
  bool device_opens = false;
  std::string detail;
};
KvmProbe probe_kvm(const HostRoots& roots, std::chrono::milliseconds timeout, std::stop_token stop = {});
// The same with the child's body replaced (it gets the device path, a char*, and exits with
// what it returns): the tests' stand-in for a KVM whose guests hang, which this host lacks.
using KvmProbeBody = int (*)(const void* device_path);
KvmProbe probe_kvm(const HostRoots& roots, std::chrono::milliseconds timeout, KvmProbeBody body, std::stop_token stop = {});
}  // namespace dstackvmm::internal
