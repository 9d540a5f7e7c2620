// SPDX-License-Identifier: Apache-2.0
// Kernel panics seen on guests' serial consoles. A dstack guest boots with panic=N and QEMU
// runs without -no-reboot, so a panicking guest reboots inside the same QEMU: no process
// exits and nothing else on the host learns of it. What the kernel printed is the only trace,
// so the engine follows each VM's serial.log (one inotify descriptor and one thread for all of
// them) and reports every "Kernel panic - not syncing" line with the lines around it.
//
// The log is written by the guest: every byte is hostile. Control bytes become '?', lines are
// cut at kMaxLine bytes, at most kLinesBefore + kLinesAfter lines are kept per panic, and one
// round reads at most kReadBudget bytes of a VM before the others get their turn.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct GuestPanic {
  std::string message;                   // what follows "Kernel panic - not syncing: "
  std::vector<std::string> serial_tail;  // lines before it, its own line, and lines after
};

// Finds panics in serial output fed in pieces of any size. A panic is complete once
// kLinesAfter lines follow it, when another panic starts, or when finish() is called (the
// kernel reboots right after its trace, so the caller finishes it once output settles).
class PanicScanner {
 public:
  static constexpr size_t kMaxLine = 256;
  static constexpr size_t kLinesBefore = 12;  // including the panic line
  static constexpr size_t kLinesAfter = 16;

  std::vector<GuestPanic> feed(std::string_view bytes);
  std::optional<GuestPanic> finish();
  bool open() const { return open_.has_value(); }

 private:
  void end_line(std::vector<GuestPanic>* done);

  std::string line_;  // the line being read, cut at kMaxLine
  std::deque<std::string> recent_;
  std::optional<GuestPanic> open_;
  size_t after_ = 0;
};

class SerialWatch {
 public:
  using OnPanic = std::function<void(const std::string& vm_id, GuestPanic panic)>;
  // `settle`: how long output may go on after a panic line before the panic is reported.
  explicit SerialWatch(OnPanic on_panic, std::chrono::milliseconds settle = std::chrono::milliseconds(300));
  ~SerialWatch();  // no callback runs once it returns
  SerialWatch(const SerialWatch&) = delete;
  SerialWatch& operator=(const SerialWatch&) = delete;

  // Follows `log` from its current end (or its start, once created); again for the same VM
  // moves it there. The file's folder is watched, so a log not yet created is fine.
  Status follow(const std::string& vm_id, const std::filesystem::path& log);
  void forget(const std::string& vm_id);
  // The log's first `bytes` were cut (rotate_live_log; 0: it was truncated whole): where the
  // watch goes on moves back by as much.
  void shifted(const std::string& vm_id, uint64_t bytes);
  // Rounds in which logs were read: the watch reads in batches, so this grows with the
  // output's bursts, not with its writes (a chatty guest writes thousands of times a second).
  uint64_t read_rounds() const;

 private:
  struct Followed {
    std::filesystem::path log;
    int wd = -1;
    int fd = -1;      // the log, kept open between rounds (-1: not there yet)
    uint64_t offset = 0;
    ino_t inode = 0;  // of the file read from `offset` (0: not there yet)
    bool dirty = false;
    bool reopen = false;  // a file was created or moved in at the log's name
    PanicScanner scanner;
    std::chrono::steady_clock::time_point settle_at{};  // while the scanner has an open panic
  };
  static constexpr uint64_t kReadBudget = 1u << 20;
  // After a round that read something, inotify's events gather this long before the next (the
  // kernel merges a file's repeated IN_MODIFY): a panic is still seen within a tenth of a second.
  static constexpr std::chrono::milliseconds kBatch{100};

  void run();
  // How long run() may sleep: 0 with a log to read, until the next panic settles, else forever (-1). Caller holds mu_.
  int next_timeout() const;
  // Reads the inotify events and marks the logs they name to be read. Caller holds mu_.
  void take_events(char* buf, size_t size);
  // Reads what was appended (up to the budget); caller holds mu_.
  void read_more(const std::string& id, Followed& f, std::vector<std::pair<std::string, GuestPanic>>* found);
  Status start_locked();

  OnPanic on_panic_;
  std::chrono::milliseconds settle_;
  mutable std::mutex mu_;
  std::map<std::string, Followed> vms_;
  uint64_t read_rounds_ = 0;
  std::map<int, std::string> by_wd_;  // a watch is on one VM's folder
  int inotify_ = -1;
  int wake_ = -1;  // eventfd: follow(), forget() and the destructor wake the thread
  bool stopping_ = false;
  std::thread thread_;  // started by the first follow()
};

}  // namespace dstackvmm::internal
