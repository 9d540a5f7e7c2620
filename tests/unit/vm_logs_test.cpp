// SPDX-License-Identifier: Apache-2.0
// /logs helpers: channels, tails and ANSI stripping.
#include <catch2/catch.hpp>

#include <dstackvmm/vm_logs.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "../support/temp_dir.hpp"
#include "base/fs_util.hpp"

using namespace dstackvmm;

TEST_CASE("log channels map to upstream's files", "[logs]") {
  CHECK(log_file_name("") == "serial.log");
  CHECK(log_file_name("serial") == "serial.log");
  CHECK(log_file_name("stdout") == "stdout.log");
  CHECK(log_file_name("stderr") == "stderr.log");
  CHECK(log_file_name("qmp").empty());
}

TEST_CASE("tail_lines keeps the last lines", "[logs]") {
  CHECK(tail_lines("a\nb\nc\n", 2) == "b\nc\n");
  CHECK(tail_lines("a\nb\nc", 2) == "b\nc");
  CHECK(tail_lines("a\nb\n", 10) == "a\nb\n");
  CHECK(tail_lines("a\nb\n", 0).empty());
  CHECK(tail_lines("", 3).empty());
}

TEST_CASE("strip_ansi removes CSI and OSC sequences only", "[logs]") {
  CHECK(strip_ansi("\x1b[1;32mok\x1b[0m done") == "ok done");
  CHECK(strip_ansi("\x1b]0;title\x07text") == "text");
  CHECK(strip_ansi("plain [brackets]") == "plain [brackets]");
}

TEST_CASE("rotating a log its writer appends to loses nothing", "[logs]") {
  dstackvmm::testing::TempDir dir("rotate-live");
  auto log = dir.path() / "serial.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  constexpr int kLines = 200000;
  std::atomic<bool> done{false};
  std::thread writer([&] {  // as QEMU writes a console: a line at a time, O_APPEND
    for (int i = 0; i < kLines; ++i) {
      std::string line = "line " + std::to_string(i) + " 0123456789abcdefghijklmnopqrstuvwxyz\n";
      if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) break;
    }
    done = true;
  });
  int rotations = 0;
  uint64_t moved_total = 0;
  while (!done) {
    uint64_t moved = 0;
    auto r = rotate_live_log(log, 1000, "T", &moved);
    REQUIRE(r.ok());
    if (*r) ++rotations;
    moved_total += moved;
  }
  writer.join();
  ::close(fd);
  if (moved_total == 0) {
    WARN("this file system cannot cut blocks from a file's start (copy and truncate were used)");
    return;
  }
  // The backups, oldest first, then the live file: every line once, in order.
  std::string all;
  for (int i = rotations; i >= 1; --i) {
    auto part = internal::read_file(log.string() + "." + std::to_string(i));
    if (!part.ok()) continue;
    std::string text = *part;
    text.erase(text.rfind("\n===== rotated "));  // its closing marker
    all += text;
  }
  all += *internal::read_file(log);
  int expected = 0;
  bool in_order = true;
  for (size_t at = 0; at < all.size();) {
    size_t nl = all.find('\n', at);
    std::string line = all.substr(at, nl - at);
    at = nl == std::string::npos ? all.size() : nl + 1;
    in_order = in_order && line == "line " + std::to_string(expected) + " 0123456789abcdefghijklmnopqrstuvwxyz";
    ++expected;
  }
  INFO(rotations << " rotations while " << kLines << " lines were written");
  CHECK(rotations > 3);
  CHECK(in_order);
  CHECK(expected == kLines);
}
