// SPDX-License-Identifier: Apache-2.0
// Starting and watching the QEMU processes. VmManager talks only to this interface, so the
// supervisor (processes that outlive the daemon) and tests can plug in their own.
#pragma once

#include <dstackvmm/export.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Upstream's supervisor ProcessConfig.
struct ProcessSpec {
  std::string id;
  std::string name;
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no slash
  std::map<std::string, std::string> env;  // added to the inherited environment
  std::filesystem::path cwd;
  std::filesystem::path stdout_path;  // appended to; "" = /dev/null
  std::filesystem::path stderr_path;
  std::filesystem::path pid_file;  // written with the child's pid; "" = none
  std::optional<uint32_t> cid;
  std::string note;
};

enum class ProcessStatus { kRunning, kStopped, kExited, kError };

struct ProcessInfo {
  ProcessSpec spec;
  ProcessStatus status = ProcessStatus::kStopped;
  bool started = false;            // wanted running (cleared by stop)
  std::optional<int> pid;
  std::optional<int64_t> started_at;  // unix seconds
  std::optional<int64_t> stopped_at;
  int wait_status = 0;  // raw waitpid status when kExited
  std::string error;    // kError: why it could not run
};

// What changed in a launcher's table after a generation (ProcessLauncher::changes).
struct ProcessChanges {
  uint64_t generation = 0;  // ask for changes after this one next time
  bool complete = false;    // `changed` is the whole table: replace, do not merge
  std::vector<ProcessInfo> changed;
  std::vector<std::string> removed;  // ids no longer in the table
};

// Implementations must be thread-safe: the manager calls them from several threads.
class DSTACKVMM_EXPORT ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts `spec`, replacing a non-running entry with the same id. kAlreadyExists "Process is
  // already running"; kInvalidArgument when the program cannot be executed.
  virtual Status start(const ProcessSpec& spec) = 0;
  // Kills (SIGKILL) and marks not started. kNotFound "Process not found".
  virtual Status stop(const std::string& id) = 0;
  // Forgets an entry: "Process not found", "Process is started", "Process is running".
  virtual Status remove(const std::string& id) = 0;
  // The entry, or nullopt when there is none. An error (kUnavailable) means the launcher
  // cannot tell right now; the process may well be running.
  virtual Result<std::optional<ProcessInfo>> info(const std::string& id) = 0;
  virtual Result<std::vector<ProcessInfo>> list() = 0;
  // The entries changed after `since` (a generation an earlier call or wait_change() gave),
  // so a watcher keeps its copy current at the cost of what changed, not of the whole table.
  // 0, a generation of an earlier launcher instance, or one too old to say: the whole table.
  // The default is list(), complete. An entry's spec may come without its argv past argv[0]
  // and its env (the supervisor's does: they are most of the table's bytes); list() and
  // info() give them whole.
  virtual Result<ProcessChanges> changes(uint64_t since);
  // The entries whose process runs, specs as brief as changes() may give them: what a
  // restarted manager re-adopts first, at the cost of what runs rather than of a host's whole
  // history. The default is changes(0), filtered.
  virtual Result<std::vector<ProcessInfo>> running();
  // Blocks until the table changed since `generation` (a value an earlier call returned; 0
  // at first) or `timeout` passed, and returns the current generation. This is how the
  // manager learns of exits without polling. The default waits out the timeout and reports
  // a change, which turns it into a poll at that interval; launchers that can, override it.
  virtual Result<uint64_t> wait_change(uint64_t generation, std::chrono::milliseconds timeout);
  // wait_change() and changes() in one: the entries changed after `since`, once there are any
  // or `timeout` passed (then none, at `since`). A launcher across a process boundary answers
  // both in one message, so an exit reaches the watcher as soon as it is known. The default
  // calls the two in turn.
  virtual Result<ProcessChanges> watch_changes(uint64_t since, std::chrono::milliseconds timeout);
  // Makes every wait_change() in progress return now. True if the launcher can (then a
  // manager going away joins its watch thread at once); false leaves the thread to return
  // at its timeout, touching nothing of the manager.
  virtual bool cancel_waits() { return false; }
};

// Children of this process, each in its own session (a terminal's Ctrl-C to the daemon does
// not reach the guests); every exit is learned from a pidfd on one shared thread. With a
// `state_file`, the table is kept there (atomically, on every change) and a new launcher on
// the same file re-adopts the processes still running, each verified by pid *and* command
// line; what died meanwhile shows exited. Thread-safe; never fails to answer info()/list().
DSTACKVMM_EXPORT std::shared_ptr<ProcessLauncher> make_direct_launcher(std::filesystem::path state_file = {});

}  // namespace dstackvmm
