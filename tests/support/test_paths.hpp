// SPDX-License-Identifier: Apache-2.0
// Where tests find the source tree, the fixtures and the build tree (set by meson).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace dstackvmm::testing {

inline std::filesystem::path env_path(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::filesystem::path(v) : std::filesystem::path(fallback);
}
inline std::filesystem::path source_root() { return env_path("DSTACKVMM_SOURCE_ROOT", "."); }
// Fixtures live in the repository: a plain clone has everything its tests read.
inline std::filesystem::path data_dir() { return source_root() / "tests/data"; }
inline std::filesystem::path build_root() { return env_path("DSTACKVMM_BUILD_ROOT", "build"); }

}  // namespace dstackvmm::testing
