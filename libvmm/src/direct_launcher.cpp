// SPDX-License-Identifier: Apache-2.0
// ProcessLauncher for children of this process: fork/exec, one waiter thread per child.
#include <dstackvmm/process_launcher.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "json_limits.hpp"
#include "fs_util.hpp"
#include "process_json.hpp"

extern char** environ;

namespace dstackvmm {

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

struct Entry {
  ProcessInfo info;
};

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Entry> entries;
  std::filesystem::path state_file;  // "" = not persisted

  // Caller holds mu. Every change is on disk before anyone is told about it.
  void save() {
    if (state_file.empty()) return;
    nlohmann::json all = nlohmann::json::array();
    for (const auto& [id, e] : entries) all.push_back(internal::process_info_json(e.info));
    (void)internal::write_file_atomic(state_file, all.dump());
  }
};

// The command line of a live process, as /proc shows it ("" when it is gone).
std::string proc_cmdline(int pid) {
  auto text = internal::read_file("/proc/" + std::to_string(pid) + "/cmdline");
  return text.ok() ? *text : "";
}

// argv as /proc/<pid>/cmdline shows it: each argument followed by a NUL.
std::string joined_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += a + std::string(1, '\0');
  return out;
}

// A process we did not fork (adopted after a restart) cannot be waited for: watch /proc.
void watch_adopted(std::shared_ptr<State> state, std::string id, int pid, std::string cmdline) {
  std::thread([state, id, pid, cmdline] {
    while (proc_cmdline(pid) == cmdline) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::lock_guard g(state->mu);
    auto it = state->entries.find(id);
    if (it == state->entries.end() || it->second.info.pid != pid) return;
    ProcessInfo& i = it->second.info;
    i.status = i.started ? ProcessStatus::kExited : ProcessStatus::kStopped;
    i.wait_status = 0;  // not our child: its exit status is unknowable
    i.stopped_at = unix_now();
    state->save();
    state->cv.notify_all();
  }).detach();
}

class DirectLauncher final : public ProcessLauncher {
 public:
  explicit DirectLauncher(std::filesystem::path state_file);
  Status start(const ProcessSpec& spec) override;
  Status stop(const std::string& id) override;
  Status remove(const std::string& id) override;
  std::optional<ProcessInfo> info(const std::string& id) override;
  std::vector<ProcessInfo> list() override;

 private:
  // Waiter threads outlive the launcher safely by holding the state, not the launcher.
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

Status DirectLauncher::start(const ProcessSpec& spec) {
  if (spec.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "empty command for process " + spec.id);
  std::unique_lock lock(state_->mu);
  if (auto it = state_->entries.find(spec.id);
      it != state_->entries.end() && it->second.info.status == ProcessStatus::kRunning)
    return make_error(ErrorCode::kAlreadyExists, "Process is already running");

  std::string program = find_program(spec.argv[0]);
  if (program.empty() || ::access(program.c_str(), X_OK) != 0)
    return make_error(ErrorCode::kInvalidArgument, "cannot execute " + spec.argv[0] + ": not found or not executable");

  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed in a multi-threaded process.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (!spec.env.count(kv.substr(0, kv.find('=')))) env_store.push_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_store.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = spec.argv;
  for (auto& s : argv_store) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string out = spec.stdout_path.empty() ? "/dev/null" : spec.stdout_path.string();
  std::string err = spec.stderr_path.empty() ? "/dev/null" : spec.stderr_path.string();
  std::string cwd = spec.cwd.string();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return make_error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the daemon blocks SIGTERM for sigwait
    int in = ::open("/dev/null", O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || o < 0 || e < 0 || (!cwd.empty() && ::chdir(cwd.c_str()) != 0) || ::dup2(in, 0) < 0 ||
        ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) {
      int code = errno;
      (void)!::write(pipefd[1], &code, sizeof code);
      ::_exit(127);
    }
    // No fd of the daemon (sockets, other VMs' files) leaks into QEMU; the error pipe closes on exec.
    if (pipefd[1] > 3) ::close_range(3, static_cast<unsigned>(pipefd[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(pipefd[1]) + 1, ~0U, 0);
    ::execve(program.c_str(), argv.data(), envp.data());
    int code = errno;
    (void)!::write(pipefd[1], &code, sizeof code);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  int child_errno = 0;
  ssize_t n;
  do n = ::read(pipefd[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    return make_error(ErrorCode::kInvalidArgument, "cannot run " + spec.argv[0] + ": " + std::strerror(child_errno));
  }

  Entry& entry = state_->entries[spec.id];
  entry.info = ProcessInfo{};
  entry.info.spec = spec;
  entry.info.status = ProcessStatus::kRunning;
  entry.info.started = true;
  entry.info.pid = pid;
  entry.info.started_at = unix_now();
  state_->save();
  lock.unlock();
  if (!spec.pid_file.empty()) (void)internal::write_file_atomic(spec.pid_file, std::to_string(pid));

  std::thread([state = state_, id = spec.id, pid] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::lock_guard g(state->mu);
    auto it = state->entries.find(id);
    if (it != state->entries.end() && it->second.info.pid == pid) {
      ProcessInfo& i = it->second.info;
      // An exit after an explicit stop is "stopped"; one nobody asked for is "exited".
      i.status = i.started ? ProcessStatus::kExited : ProcessStatus::kStopped;
      i.wait_status = status;
      i.stopped_at = unix_now();
      state->save();
    }
    state->cv.notify_all();
  }).detach();
  return {};
}

Status DirectLauncher::stop(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return make_error(ErrorCode::kNotFound, "Process not found");
  ProcessInfo& i = it->second.info;
  i.started = false;
  state_->save();
  if (i.status == ProcessStatus::kRunning && i.pid) ::kill(*i.pid, SIGKILL);
  return {};
}

Status DirectLauncher::remove(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return make_error(ErrorCode::kNotFound, "Process not found");
  if (it->second.info.status == ProcessStatus::kRunning)
    return make_error(ErrorCode::kFailedPrecondition, it->second.info.started ? "Process is started" : "Process is running");
  state_->entries.erase(it);
  state_->save();
  return {};
}

std::optional<ProcessInfo> DirectLauncher::info(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return std::nullopt;
  return it->second.info;
}

std::vector<ProcessInfo> DirectLauncher::list() {
  std::lock_guard lock(state_->mu);
  std::vector<ProcessInfo> out;
  for (const auto& [id, e] : state_->entries) out.push_back(e.info);
  return out;
}

DirectLauncher::DirectLauncher(std::filesystem::path state_file) {
  state_->state_file = std::move(state_file);
  if (state_->state_file.empty()) return;
  auto text = internal::read_file(state_->state_file);
  if (!text.ok()) return;
  auto all = internal::parse_json(*text);
  if (!all.is_array()) return;
  std::lock_guard lock(state_->mu);
  for (const auto& j : all) {
    ProcessInfo info;
    try {
      info = internal::process_info_from(j);
    } catch (const std::exception&) {
      continue;  // one unreadable entry must not cost the others
    }
    if (info.status == ProcessStatus::kRunning && info.pid) {
      // Adopt only the very process we started: same pid *and* the same command line.
      std::string expect = joined_argv(info.spec.argv);
      if (proc_cmdline(*info.pid) == expect) {
        watch_adopted(state_, info.spec.id, *info.pid, expect);
      } else {
        info.status = info.started ? ProcessStatus::kExited : ProcessStatus::kStopped;
        info.stopped_at = unix_now();
      }
    }
    state_->entries[info.spec.id].info = info;
  }
  state_->save();
}

}  // namespace

std::shared_ptr<ProcessLauncher> make_direct_launcher(std::filesystem::path state_file) {
  return std::make_shared<DirectLauncher>(std::move(state_file));
}

}  // namespace dstackvmm
