// SPDX-License-Identifier: Apache-2.0
// The test guest image, built (or reused from the cache) by tests/guest/build-image.sh.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

#include "test_paths.hpp"

namespace dstackvmm::testing {

// The image folder (its parent is the image root), or "" when it cannot be built.
inline std::filesystem::path test_guest_image() {
  static std::filesystem::path cached = [] {
    std::string cmd = (source_root() / "tests/guest/build-image.sh").string() + " " +
                      (build_root() / "guest-image").string() + " 2>&1";
    std::string out, last;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char line[4096];
      while (std::fgets(line, sizeof line, p)) {
        out += line;
        last = line;
      }
      if (::pclose(p) != 0) {
        std::fprintf(stderr, "build-image.sh failed:\n%s\n", out.c_str());
        return std::filesystem::path();
      }
    }
    while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
    return std::filesystem::path(last);
  }();
  return cached;
}

}  // namespace dstackvmm::testing
