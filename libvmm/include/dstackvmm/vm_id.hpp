// SPDX-License-Identifier: Apache-2.0
// VM ids: checked before they ever become part of a path.
#pragma once

#include <dstackvmm/export.hpp>

#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Valid ids match [A-Za-z0-9_-]{1,64} (so "..", "/" and NUL can never reach the filesystem).
// Error (kInvalidArgument): "invalid VM id: '<id>'".
DSTACKVMM_EXPORT Status validate_vm_id(std::string_view id);

// A fresh UUID v4, the form CreateVm gives new VMs.
DSTACKVMM_EXPORT std::string new_vm_id();

}  // namespace dstackvmm
