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

}  // namespace dstackvmm
