// SPDX-License-Identifier: Apache-2.0
// What this build is: the upstream API version it speaks and the git revision it was built from.
#pragma once

#include <dstackvmm/export.hpp>

#include <string_view>

namespace dstackvmm {

// The upstream dstack-vmm release whose wire format we speak, e.g. "0.6.0".
DSTACKVMM_EXPORT std::string_view api_version();
// "git:<20 hex>" of this build, or "git:unknown" outside a checkout.
DSTACKVMM_EXPORT std::string_view git_rev();
// libdstackvmm's own version.
DSTACKVMM_EXPORT std::string_view library_version();

}  // namespace dstackvmm
