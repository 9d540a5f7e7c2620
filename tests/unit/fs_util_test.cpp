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

TEST_CASE("overwrite_same_length writes in place only over a file of that length", "[fs]") {
  testing::TempDir dir("fs");
  auto path = dir.path() / "state.json";
  REQUIRE(write_file_atomic(path, "{\"a\":1}").ok());
  struct stat before{}, after{};
  ::stat(path.c_str(), &before);
  REQUIRE(overwrite_same_length(path, "{\"b\":2}").ok());
  ::stat(path.c_str(), &after);
  CHECK(*read_file(path) == "{\"b\":2}");
  CHECK(after.st_ino == before.st_ino);  // the same file: no rename, no new inode
  uint64_t syncs = fsync_count();
  CHECK(sync_data(path).ok());  // its data: all an in-place write needs synced
  CHECK(fsync_count() == syncs + 1);
  CHECK(sync_data(dir.path() / "missing.json").error().code == ErrorCode::kIo);

  // Another length, or no file: refused, and the file is as it was.
  auto longer = overwrite_same_length(path, "{\"b\":22}");
  REQUIRE_FALSE(longer.ok());
  CHECK(longer.error().code == ErrorCode::kFailedPrecondition);
  CHECK(*read_file(path) == "{\"b\":2}");
  CHECK(overwrite_same_length(dir.path() / "missing.json", "x").error().code == ErrorCode::kFailedPrecondition);
  CHECK(overwrite_same_length(path, std::string(513, 'x')).error().code == ErrorCode::kInvalidArgument);
  auto entries = std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator());
  CHECK(entries == 1);
}
