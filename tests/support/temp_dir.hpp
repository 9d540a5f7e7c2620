// SPDX-License-Identifier: Apache-2.0
// A unique folder under /tmp (short, so unix socket paths inside it fit), removed at the end.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace dstackvmm::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t") {
    std::string tmpl = "/tmp/dvmm-" + tag + ".XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace dstackvmm::testing
