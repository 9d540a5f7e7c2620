// SPDX-License-Identifier: Apache-2.0
// Kernel panics read from a guest's serial log: the scanner on its own (pieces of any size,
// hostile bytes, bounded memory) and the watcher on real files (a log created after it starts
// watching, appended to, copy-truncated by rotation, flooded).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>

#include <dstackvmm/vm_logs.hpp>

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "guest/serial_watch.hpp"

using namespace dstackvmm::internal;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;

namespace {
const std::string kPanic =
    "[    2.100000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n";

std::vector<GuestPanic> scan_all(const std::string& text, size_t piece) {
  PanicScanner s;
  std::vector<GuestPanic> out;
  for (size_t at = 0; at < text.size(); at += piece)
    for (auto& p : s.feed(std::string_view(text).substr(at, piece))) out.push_back(std::move(p));
  if (auto p = s.finish()) out.push_back(std::move(*p));
  return out;
}

void append(const std::filesystem::path& p, const std::string& text) { std::ofstream(p, std::ios::app) << text; }

// Collects what a SerialWatch reports.
struct Seen {
  std::mutex mu;
  std::vector<std::pair<std::string, GuestPanic>> panics;
  SerialWatch::OnPanic sink() {
    return [this](const std::string& id, GuestPanic p) {
      std::lock_guard lock(mu);
      panics.emplace_back(id, std::move(p));
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return panics.size();
  }
};
}  // namespace

TEST_CASE("the scanner finds a panic with the lines around it, whatever the pieces", "[serial]") {
  std::string text = "boot line 1\r\nE2E-PANIC: init exits\n" + kPanic + "CPU: 0 PID: 1 Comm: init\nCall Trace:\n";
  for (size_t piece : {size_t(1), size_t(7), text.size()}) {
    auto found = scan_all(text, piece);
    REQUIRE(found.size() == 1);
    CHECK(found[0].message == "Attempted to kill init! exitcode=0x00000100");
    CHECK(found[0].serial_tail == std::vector<std::string>{"boot line 1", "E2E-PANIC: init exits", kPanic.substr(0, kPanic.size() - 1),
                                                           "CPU: 0 PID: 1 Comm: init", "Call Trace:"});
  }
}

TEST_CASE("the scanner is bounded and defuses what the guest prints", "[serial][attack]") {
  PanicScanner s;
  // 8 MiB without a newline, then a panic line carrying a terminal escape.
  std::string flood(8u << 20, 'A');
  CHECK(s.feed(flood).empty());
  CHECK(s.feed("\nKernel panic - not syncing: \x1b]0;owned\x07 boom\n").empty());
  REQUIRE(s.open());
  auto p = s.finish();
  REQUIRE(p);
  CHECK(p->message == "?]0;owned? boom");
  REQUIRE(p->serial_tail.size() == 2);
  CHECK(p->serial_tail[0].size() == PanicScanner::kMaxLine);  // the flood, cut
  // Lines before and after are capped.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "line " + std::to_string(i) + "\n";
  std::string first_before = "line " + std::to_string(100 - PanicScanner::kLinesBefore + 1);
  auto found = s.feed(many + kPanic + many + kPanic);
  REQUIRE(found.size() == 1);
  CHECK(found[0].serial_tail.size() == PanicScanner::kLinesBefore + PanicScanner::kLinesAfter);
  CHECK(found[0].serial_tail.front() == first_before);
  REQUIRE(s.open());  // the second waits for its lines after, or for finish()
  auto second = s.finish();
  CHECK(second->serial_tail.size() == PanicScanner::kLinesBefore);
  CHECK(second->serial_tail.front() == first_before);
  // A panic right after another completes the first at once.
  CHECK(s.feed(kPanic + kPanic).size() == 1);
}

TEST_CASE("the watcher reports panics appended after it starts following, and only those", "[serial]") {
  TempDir dir("serial");
  auto log = dir.path() / "serial.log";
  append(log, "an earlier boot\n" + kPanic);  // before follow(): not this boot's
  Seen seen;
  {
    SerialWatch watch(seen.sink(), 50ms);
    REQUIRE(watch.follow("vm-a", log).ok());
    append(log, "booting\n" + kPanic + "Call Trace:\n");
    REQUIRE(wait_until([&] { return seen.count() == 1; }, 10s));
    {
      std::lock_guard lock(seen.mu);
      CHECK(seen.panics[0].first == "vm-a");
      CHECK(seen.panics[0].second.serial_tail.front() == "booting");
      CHECK(seen.panics[0].second.serial_tail.back() == "Call Trace:");
    }
    // Rotation copies the log away and truncates it: the rest is read from the new start.
    std::filesystem::resize_file(log, 0);
    append(log, "rotated\n" + kPanic);
    REQUIRE(wait_until([&] { return seen.count() == 2; }, 10s));
    // A flood bigger than one round's budget, then a panic: found, and in order.
    append(log, std::string(3u << 20, 'x') + "\n" + kPanic);
    REQUIRE(wait_until([&] { return seen.count() == 3; }, 20s));
    watch.forget("vm-a");
    append(log, kPanic);
  }  // the destructor joins: nothing can arrive after it
  CHECK(seen.count() == 3);
}

TEST_CASE("the watcher follows a log that does not exist yet, for several VMs", "[serial]") {
  TempDir dir("serial");
  std::filesystem::create_directories(dir.path() / "a");
  std::filesystem::create_directories(dir.path() / "b");
  Seen seen;
  SerialWatch watch(seen.sink(), 50ms);
  REQUIRE(watch.follow("a", dir.path() / "a" / "serial.log").ok());
  REQUIRE(watch.follow("b", dir.path() / "b" / "serial.log").ok());
  append(dir.path() / "b" / "stdout.log", kPanic);  // another file of the folder: not read
  append(dir.path() / "b" / "serial.log", kPanic);
  REQUIRE(wait_until([&] { return seen.count() == 1; }, 10s));
  std::lock_guard lock(seen.mu);
  CHECK(seen.panics[0].first == "b");
  CHECK(watch.follow("c", dir.path() / "missing" / "serial.log").error().message.find("cannot watch") != std::string::npos);
}

TEST_CASE("a chatty guest costs the watcher per burst, not per write, and a cut log is followed on", "[serial]") {
  TempDir dir("serial");
  auto log = dir.path() / "serial.log";
  append(log, "");
  Seen seen;
  SerialWatch watch(seen.sink(), 50ms);
  REQUIRE(watch.follow("vm-a", log).ok());
  // 3000 writes of a line each, as a guest printing a line at a time makes QEMU write them.
  int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3000; ++i) {
    std::string line = i == 1500 ? kPanic : "line " + std::to_string(i) + "\n";
    REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    if (i % 10 == 9) std::this_thread::sleep_for(1ms);  // spread over a few hundred ms, like a busy console
  }
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(wait_until([&] { return seen.count() == 1; }, 10s));
  // A round per batch (kBatch, 100 ms), whatever the number of writes: before, a round per write.
  uint64_t bound = 2 + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() / 100) * 2;
  INFO("rounds " << watch.read_rounds() << " for 3000 writes in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(watch.read_rounds() <= bound);
  CHECK(watch.read_rounds() < 300);
  // The log's first blocks are cut by a rotation of the running VM: the watch goes on where it was.
  std::string big(8192, 'y');
  big += "\n";
  REQUIRE(::write(fd, big.data(), big.size()) == static_cast<ssize_t>(big.size()));
  REQUIRE(wait_until([&] { return !::access(log.c_str(), F_OK) && std::filesystem::file_size(log) > 8192; }, 5s));
  uint64_t moved = 0;
  auto rotated = dstackvmm::rotate_live_log(log, 3, "T", &moved);
  REQUIRE(rotated.ok());
  if (moved == 0) {
    WARN("this file system cannot cut blocks from a file's start; the rest is not tried here");
  } else {
    watch.shifted("vm-a", moved);
    REQUIRE(::write(fd, kPanic.data(), kPanic.size()) == static_cast<ssize_t>(kPanic.size()));
    REQUIRE(wait_until([&] { return seen.count() == 2; }, 10s));
  }
  ::close(fd);
}
