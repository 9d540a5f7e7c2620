// SPDX-License-Identifier: Apache-2.0
// VM ids: checked before they ever become part of a path.
#include <dstackvmm/vm_id.hpp>

#include "base/crypto.hpp"

namespace dstackvmm {

Status validate_vm_id(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  if (ok) return {};
  std::string shown;
  for (char c : id.substr(0, 80)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  return make_error(ErrorCode::kInvalidArgument, "invalid VM id: '" + shown + "'");
}

std::string new_vm_id() { return internal::new_uuid_v4(); }

}  // namespace dstackvmm
