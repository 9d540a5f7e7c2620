// SPDX-License-Identifier: Apache-2.0
// A VM status's name, as the wire and the console show it.
#include <dstackvmm/vm_info.hpp>

namespace dstackvmm {

std::string_view vm_status_name(VmStatus s) {
  switch (s) {
    case VmStatus::kRunning: return "running";
    case VmStatus::kExited: return "exited";
    case VmStatus::kStopping: return "stopping";
    case VmStatus::kStopped: return "stopped";
    case VmStatus::kRemoving: return "removing";
    case VmStatus::kUnknown: return "unknown";
  }
  return "stopped";
}

std::optional<VmStatus> vm_status_from_name(std::string_view name) {
  for (VmStatus s : {VmStatus::kRunning, VmStatus::kExited, VmStatus::kStopping, VmStatus::kStopped, VmStatus::kRemoving,
                     VmStatus::kUnknown})
    if (vm_status_name(s) == name) return s;
  return std::nullopt;
}

}  // namespace dstackvmm
