// SPDX-License-Identifier: Apache-2.0
// ProcessLauncher for children of this process: spawn_process, exits from the ChildWatcher.
#include <dstackvmm/process_launcher.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/json_limits.hpp"
#include "base/fs_util.hpp"
#include "process/process_json.hpp"
#include "process/spawn.hpp"

namespace dstackvmm {

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Entry {
  ProcessInfo info;
  uint64_t generation = 0;  // of its last change
};

// Generations start from the clock (shifted so no launcher could change 65536 times in one
// ms): a restarted supervisor's generations are all above its predecessor's, so a watcher
// holding an old one is told the whole table, never a delta against a table it never had.
uint64_t first_generation() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count())
         << 16;
}
constexpr size_t kMaxTombstones = 4096;  // removals remembered for deltas; older ones mean "complete"

// The table on disk is a folder of small records, one per process (<state_file>.d/<key>.json),
// so a change writes one record, not the whole table (at 1000 processes that was 1.8 MB per
// start or stop). An older single-file table beside it is read once and converted.
std::string record_name(const std::string& id) {
  bool plain = !id.empty() && id.size() <= 128 && id[0] != '.';
  for (char c : id) plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  return (plain ? id : "h-" + internal::sha256_hex(id)) + ".json";
}

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Entry> entries;
  std::filesystem::path state_file;  // "" = not persisted
  std::filesystem::path records;     // <state_file>.d
  uint64_t base = first_generation();  // what this instance started from
  uint64_t generation = base;           // bumped on every change; wait_change() waits on it
  uint64_t forgotten = base;            // removals up to here are no longer remembered
  std::map<std::string, uint64_t> removed;  // id -> generation of its removal
  uint64_t cancels = 0;                 // bumped by cancel_waits()

  // Records are written outside mu: written under it, they kept every waiter (the daemon's
  // change feed among them) off the news for the length of a file write, and an exit was told
  // ~0.6 ms after it happened. Writers take turns under disk_mu (taken before mu, never after).
  std::mutex disk_mu;

  // Caller holds mu; then calls persist(id) once it has released mu (or not at all, for a
  // change the next one supersedes at once). Waiters are told at once; what a process
  // restarted in between would read is no worse than a crash of this one leaves, and every
  // reader of the records checks the pid they name (see the constructor).
  void change(const std::string& id) {
    ++generation;
    cv.notify_all();
    if (auto it = entries.find(id); it != entries.end()) {
      it->second.generation = generation;
      removed.erase(id);
    } else {
      removed[id] = generation;
      if (removed.size() > kMaxTombstones) {
        auto oldest = std::min_element(removed.begin(), removed.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
        forgotten = std::max(forgotten, oldest->second);
        removed.erase(oldest);
      }
    }
  }

  // Caller does not hold mu. Writes the record of `id` as the table has it now, or removes it.
  // Each writer writes the latest state in its turn, so the file ends as the last change left
  // it, whichever thread's write comes last.
  void persist(const std::string& id) {
    std::lock_guard d(disk_mu);
    std::filesystem::path path;
    std::optional<std::string> text;
    {
      std::lock_guard lock(mu);
      if (records.empty()) return;
      path = records / record_name(id);
      // Replaced whole, never synced: the record serves a supervisor restarted while the host
      // stays up (the page cache has it); a power cut ends every process it could describe.
      if (auto it = entries.find(id); it != entries.end()) text = internal::process_info_json(it->second.info).dump();
    }
    std::error_code ec;
    if (text) (void)internal::replace_file(path, *text);
    else std::filesystem::remove(path, ec);
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

// Called on the ChildWatcher's thread when `pid` (entry `id`) has exited.
void on_exit(const std::shared_ptr<State>& state, const std::string& id, int pid, int wait_status) {
  {
    std::lock_guard g(state->mu);
    auto it = state->entries.find(id);
    if (it == state->entries.end() || it->second.info.pid != pid) return;
    ProcessInfo& i = it->second.info;
    // An exit after an explicit stop is "stopped"; one nobody asked for is "exited".
    i.status = i.started ? ProcessStatus::kExited : ProcessStatus::kStopped;
    i.wait_status = wait_status < 0 ? 0 : wait_status;  // an adopted process's status is unknowable
    i.stopped_at = unix_now();
    state->change(id);
  }
  state->persist(id);
}

// Watches `pidfd` (owned from here on) for the exit of `pid`. The watcher holds the state,
// not the launcher, so a callback after the launcher is gone is harmless.
void watch(const std::shared_ptr<State>& state, const std::string& id, int pid, int pidfd) {
  internal::ChildWatcher::instance().watch(pidfd, [state, id, pid](int status) { on_exit(state, id, pid, status); });
}

class DirectLauncher final : public ProcessLauncher {
 public:
  explicit DirectLauncher(std::filesystem::path state_file);
  ~DirectLauncher() override;
  Status start(const ProcessSpec& spec) override;
  Status stop(const std::string& id) override;
  Status remove(const std::string& id) override;
  Result<std::optional<ProcessInfo>> info(const std::string& id) override;
  Result<std::vector<ProcessInfo>> list() override;
  Result<ProcessChanges> changes(uint64_t since) override;
  Result<std::vector<ProcessInfo>> running() override;
  Result<uint64_t> wait_change(uint64_t generation, std::chrono::milliseconds timeout) override;
  bool cancel_waits() override;

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

Status DirectLauncher::start(const ProcessSpec& spec) {
  if (spec.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "empty command for process " + spec.id);
  std::unique_lock lock(state_->mu);
  if (auto it = state_->entries.find(spec.id);
      it != state_->entries.end() && it->second.info.status == ProcessStatus::kRunning)
    return make_error(ErrorCode::kAlreadyExists, "Process is already running");

  internal::SpawnSpec how;
  how.argv = spec.argv;
  how.env = spec.env;
  how.cwd = spec.cwd;
  how.stdout_path = spec.stdout_path;
  how.stderr_path = spec.stderr_path;
  auto child = internal::spawn_process(how);
  if (!child.ok()) return child.error();
  pid_t pid = child->pid;

  Entry& entry = state_->entries[spec.id];
  entry.info = ProcessInfo{};
  entry.info.spec = spec;
  entry.info.status = ProcessStatus::kRunning;
  entry.info.started = true;
  entry.info.pid = pid;
  entry.info.started_at = unix_now();
  state_->change(spec.id);
  lock.unlock();
  state_->persist(spec.id);  // before the caller learns of the process
  if (!spec.pid_file.empty()) (void)internal::replace_file(spec.pid_file, std::to_string(pid));  // (as the record)

  if (child->pidfd >= 0) {
    watch(state_, spec.id, pid, child->pidfd);
  } else {
    // No pidfd (a kernel before 5.3): fall back to a waiter thread for this child.
    std::thread([state = state_, id = spec.id, pid] {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      on_exit(state, id, pid, status);
    }).detach();
  }
  return {};
}

Status DirectLauncher::stop(const std::string& id) {
  bool killed;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->entries.find(id);
    if (it == state_->entries.end()) return make_error(ErrorCode::kNotFound, "Process not found");
    ProcessInfo& i = it->second.info;
    i.started = false;
    // The kill first, and the record then left to the exit it causes, which writes it whole
    // (stopped) moments later: a write here delayed the answer, and with it the caller, by
    // up to milliseconds while QEMU was dying. A crash in between leaves a record saying
    // started of a process that is gone, which nothing restarts on its own (the manager's
    // started flag was cleared before it asked).
    killed = i.status == ProcessStatus::kRunning && i.pid && ::kill(*i.pid, SIGKILL) == 0;
    state_->change(id);
  }
  if (!killed) state_->persist(id);
  return {};
}

Status DirectLauncher::remove(const std::string& id) {
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->entries.find(id);
    if (it == state_->entries.end()) return make_error(ErrorCode::kNotFound, "Process not found");
    if (it->second.info.status == ProcessStatus::kRunning)
      return make_error(ErrorCode::kFailedPrecondition, it->second.info.started ? "Process is started" : "Process is running");
    state_->entries.erase(it);
    state_->change(id);
  }
  state_->persist(id);
  return {};
}

Result<std::optional<ProcessInfo>> DirectLauncher::info(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->entries.find(id);
  if (it == state_->entries.end()) return std::optional<ProcessInfo>();
  return std::optional<ProcessInfo>(it->second.info);
}

Result<std::vector<ProcessInfo>> DirectLauncher::list() {
  std::lock_guard lock(state_->mu);
  std::vector<ProcessInfo> out;
  for (const auto& [id, e] : state_->entries) out.push_back(e.info);
  return out;
}

Result<ProcessChanges> DirectLauncher::changes(uint64_t since) {
  std::lock_guard lock(state_->mu);
  ProcessChanges out;
  out.generation = state_->generation;
  out.complete = since < state_->forgotten || since > state_->generation;
  for (const auto& [id, e] : state_->entries)
    if (out.complete || e.generation > since) out.changed.push_back(e.info);
  if (!out.complete)
    for (const auto& [id, gen] : state_->removed)
      if (gen > since) out.removed.push_back(id);
  return out;
}

Result<std::vector<ProcessInfo>> DirectLauncher::running() {
  std::lock_guard lock(state_->mu);
  std::vector<ProcessInfo> out;
  for (const auto& [id, e] : state_->entries)
    if (e.info.status == ProcessStatus::kRunning) out.push_back(e.info);
  return out;
}

Result<uint64_t> DirectLauncher::wait_change(uint64_t generation, std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  uint64_t cancels = state_->cancels;
  state_->cv.wait_for(lock, timeout, [&] { return state_->generation != generation || state_->cancels != cancels; });
  return state_->generation;
}

bool DirectLauncher::cancel_waits() {
  std::lock_guard lock(state_->mu);
  ++state_->cancels;
  state_->cv.notify_all();
  return true;
}

DirectLauncher::DirectLauncher(std::filesystem::path state_file) {
  state_->state_file = std::move(state_file);
  if (state_->state_file.empty()) return;
  state_->records = state_->state_file.string() + ".d";
  std::vector<std::pair<nlohmann::json, bool>> found;  // a record, and whether it came from an older table
  if (auto text = internal::read_file(state_->state_file); text.ok()) {  // converted below
    auto all = internal::parse_json(*text);
    if (all.is_array())
      for (auto& j : all) found.emplace_back(std::move(j), true);
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(state_->records, ec)) (void)internal::make_dirs(state_->records);
  for (const auto& e : std::filesystem::directory_iterator(state_->records, ec)) {
    if (e.path().extension() != ".json" || !e.is_regular_file(ec)) continue;  // temp files of a write cut short
    if (auto text = internal::read_file(e.path()); text.ok()) found.emplace_back(internal::parse_json(*text), false);
  }
  std::vector<std::tuple<std::string, int, int>> adopted;  // id, pid, pidfd
  std::vector<std::string> changed_ids;
  std::unique_lock lock(state_->mu);
  for (const auto& [j, legacy] : found) {
    bool changed = legacy;
    ProcessInfo info;
    try {
      info = internal::process_info_from(j);
    } catch (const std::exception&) {
      continue;  // one unreadable entry must not cost the others
    }
    if (info.status == ProcessStatus::kRunning && info.pid) {
      // Adopt only the very process we started: same pid *and* the same command line.
      std::string expect = joined_argv(info.spec.argv);
      int pidfd = proc_cmdline(*info.pid) == expect ? internal::open_pidfd(*info.pid) : -1;
      // The pidfd refers to the process checked just before; should it have died and its pid
      // been reused in between, the check after opening catches it.
      if (pidfd >= 0 && proc_cmdline(*info.pid) == expect) {
        adopted.emplace_back(info.spec.id, *info.pid, pidfd);
      } else {
        if (pidfd >= 0) ::close(pidfd);
        info.status = info.started ? ProcessStatus::kExited : ProcessStatus::kStopped;
        info.stopped_at = unix_now();
        changed = true;
      }
    }
    std::string id = info.spec.id;
    state_->entries[id].info = std::move(info);
    if (changed) {  // only what differs from its record is written again
      state_->change(id);
      changed_ids.push_back(id);
    }
  }
  lock.unlock();
  for (const auto& id : changed_ids) state_->persist(id);
  std::filesystem::remove(state_->state_file, ec);  // every entry is a record now
  for (auto& [id, pid, pidfd] : adopted) watch(state_, id, pid, pidfd);
}

// Its children outlive it and its watchers still reap them, but what they learn is no longer
// written: a launcher opened on the same state after this one owns the records now, and a late
// write from here would bring back a record that one has removed.
DirectLauncher::~DirectLauncher() {
  {
    std::lock_guard lock(state_->mu);
    state_->records.clear();
  }
  std::lock_guard d(state_->disk_mu);  // a write under way ends before this launcher does
}

}  // namespace

std::shared_ptr<ProcessLauncher> make_direct_launcher(std::filesystem::path state_file) {
  return std::make_shared<DirectLauncher>(std::move(state_file));
}

}  // namespace dstackvmm

namespace dstackvmm {

Result<ProcessChanges> ProcessLauncher::changes(uint64_t) {
  auto all = list();
  if (!all.ok()) return all.error();
  ProcessChanges out;
  out.complete = true;
  out.changed = std::move(*all);
  return out;
}

Result<std::vector<ProcessInfo>> ProcessLauncher::running() {
  auto all = changes(0);
  if (!all.ok()) return all.error();
  std::vector<ProcessInfo> out;
  for (auto& p : all->changed)
    if (p.status == ProcessStatus::kRunning) out.push_back(std::move(p));
  return out;
}

Result<ProcessChanges> ProcessLauncher::watch_changes(uint64_t since, std::chrono::milliseconds timeout) {
  auto next = wait_change(since, timeout);
  if (!next.ok()) return next.error();
  if (*next == since && since != 0) return ProcessChanges{since, false, {}, {}};  // nothing changed
  auto ch = changes(since);
  if (ch.ok() && ch->generation == 0) ch->generation = *next;  // a launcher that keeps no generations
  return ch;
}

Result<uint64_t> ProcessLauncher::wait_change(uint64_t generation, std::chrono::milliseconds timeout) {
  std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(1)));
  return generation + 1;
}

}  // namespace dstackvmm
