// SPDX-License-Identifier: Apache-2.0
// The one way this library starts a process, and the one place that learns when any of them
// ends. Everything the child needs is prepared before fork(), so the child runs only
// async-signal-safe calls; exits are learned from pidfds on one thread, never by polling.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no slash
  std::map<std::string, std::string> env;  // added to (or replacing in) the inherited environment
  std::filesystem::path cwd;               // "" = the caller's
  std::filesystem::path stdout_path;       // appended to; "" = /dev/null
  std::filesystem::path stderr_path;       // "" = /dev/null
  int stdout_fd = -1;                      // instead of a path (dup'ed; the caller keeps its fd)
  int stderr_fd = -1;                      // likewise; -1 with stdout_fd set: stderr goes there too
  int stdin_fd = -1;                       // likewise; -1 = /dev/null
  bool new_session = true;  // setsid(): a Ctrl-C to our terminal does not reach the child
  // The child is killed (SIGKILL) when this process dies, even by SIGKILL: for what a wrapper
  // process runs (the swtpm launcher), so nothing outlives the process that watches it.
  bool die_with_parent = false;
};

struct SpawnedProcess {
  pid_t pid = -1;
  int pidfd = -1;  // owned by the caller; readable once the process has exited
};

// Starts the process. An exec failure (missing program, bad cwd) is reported here, not as an
// exit: kInvalidArgument "cannot run <prog>: <why>".
Result<SpawnedProcess> spawn_process(const SpawnSpec& spec);

// Runs `probe(arg)` in a forked child (pidfd as spawn_process gives it) whose exit status is
// what it returns: for probes that may hang or crash the process that makes them (a KVM
// guest on a host whose nested virtualisation does not work). The child makes only system
// calls: `probe` must not allocate, lock or touch anything another thread may hold.
Result<SpawnedProcess> fork_probe(int (*probe)(const void* arg), const void* arg);

// `name` as exec finds it: a path with a slash as it is, else the first regular executable file
// of that name on PATH; "" when there is none.
std::string find_program(const std::string& name);

// A pidfd for a process we did not start (adopted after a restart); -1 if it is gone.
int open_pidfd(pid_t pid);

// A descriptor that becomes readable once `stop` is requested (for poll() beside others);
// -1 when the token can never be stopped.
class StopFd {
 public:
  explicit StopFd(std::stop_token stop);
  ~StopFd();
  StopFd(const StopFd&) = delete;
  StopFd& operator=(const StopFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::optional<std::stop_callback<std::function<void()>>> callback_;
};

// Waits for the child behind `pidfd` to exit, up to `timeout` or until `stop` is requested,
// and reaps it. The raw wait status, or nullopt on timeout or stop (the child is left running).
std::optional<int> wait_child(const SpawnedProcess& p, std::chrono::milliseconds timeout, std::stop_token stop = {});

// One thread watching every registered pidfd. When a process exits, its callback runs on that
// thread with the raw wait status (our child, reaped here) or -1 (not our child: unknowable).
// Callbacks must be short and must not call back into the watcher.
class ChildWatcher {
 public:
  static ChildWatcher& instance();
  // Takes ownership of `pidfd` (ignored when < 0: the caller checks open_pidfd's result).
  void watch(int pidfd, std::function<void(int wait_status)> on_exit);
  ~ChildWatcher();

 private:
  ChildWatcher();
  struct Impl;
  Impl* impl_;
};

}  // namespace dstackvmm::internal
