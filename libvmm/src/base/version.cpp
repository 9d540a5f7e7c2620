// SPDX-License-Identifier: Apache-2.0
// Build identity, filled in by meson.
#include <dstackvmm/version.hpp>

#include "version_gen.hpp"

namespace dstackvmm {

std::string_view api_version() { return DSTACKVMM_API_VERSION; }
std::string_view library_version() { return DSTACKVMM_LIBRARY_VERSION; }
std::string_view git_rev() {
  static constexpr std::string_view kRev = DSTACKVMM_GIT_REV;
  return kRev.size() > 4 ? kRev : "git:unknown";
}

}  // namespace dstackvmm
