// SPDX-License-Identifier: Apache-2.0
// Atomic writes: the file is either old or new, and no temp file is left behind.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "../support/temp_dir.hpp"
#include "base/fs_util.hpp"

using namespace dstackvmm;
using namespace dstackvmm::internal;

TEST_CASE("write_file_atomic replaces content and leaves no temp files", "[fs]") {
  testing::TempDir dir("fs");
  auto path = dir.path() / "state.json";
  REQUIRE(write_file_atomic(path, "old").ok());
  REQUIRE(write_file_atomic(path, "new content", 0600).ok());
  CHECK(*read_file(path) == "new content");
  struct stat st{};
  ::stat(path.c_str(), &st);
  CHECK((st.st_mode & 0777) == 0600);
  auto entries = std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator());
  CHECK(entries == 1);
}

TEST_CASE("write_file_atomic fails cleanly where it cannot write", "[fs]") {
  testing::TempDir dir("fs");
  auto s = write_file_atomic(dir.path() / "missing" / "x.json", "data");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::kIo);
  CHECK(s.error().message.find("cannot create") != std::string::npos);
  CHECK(read_file(dir.path() / "nope").error().code == ErrorCode::kNotFound);
}
