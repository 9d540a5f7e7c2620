// SPDX-License-Identifier: Apache-2.0
// The direct launcher with a state file: a new launcher re-adopts live processes (verified by
// pid and command line) and reports the ones that died meanwhile; SIGKILL stops adopted ones.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <map>
#include <set>

#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include <dstackvmm/process_launcher.hpp>
#include <nlohmann/json.hpp>

#include "base/fs_util.hpp"

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;

namespace {
ProcessSpec sleeper(const std::string& id, const TempDir& dir) {
  ProcessSpec s;
  s.id = id;
  s.argv = {"sleep", "300"};
  s.stdout_path = dir.path() / (id + ".out");
  s.stderr_path = dir.path() / (id + ".err");
  s.pid_file = dir.path() / (id + ".pid");
  return s;
}
ProcessInfo get(ProcessLauncher& l, const std::string& id) {
  auto i = l.info(id);
  REQUIRE(i.ok());
  REQUIRE(*i);
  return **i;
}
bool running(ProcessLauncher& l, const std::string& id) { return get(l, id).status == ProcessStatus::kRunning; }
}  // namespace

TEST_CASE("processes outlive their launcher and are re-adopted from the state file", "[launcher]") {
  TempDir dir("launch");
  auto state = dir.path() / "processes.json";
  int a_pid = 0, b_pid = 0;
  {
    auto first = make_direct_launcher(state);
    REQUIRE(first->start(sleeper("a", dir)).ok());
    REQUIRE(first->start(sleeper("b", dir)).ok());
    a_pid = *get(*first, "a").pid;
    b_pid = *get(*first, "b").pid;
    CHECK(first->start(sleeper("a", dir)).error().message == "Process is already running");
  }  // the launcher goes away; its children do not
  REQUIRE(::kill(a_pid, 0) == 0);
  REQUIRE(::kill(b_pid, SIGKILL) == 0);  // b dies while nobody watches
  REQUIRE(wait_until([&] { return ::kill(b_pid, 0) != 0 || std::filesystem::exists("/proc/" + std::to_string(b_pid) + "/cmdline") == false; }, 5s));

  auto second = make_direct_launcher(state);
  CHECK(running(*second, "a"));
  CHECK(get(*second, "a").pid == a_pid);
  CHECK(get(*second, "a").started_at);
  CHECK(get(*second, "b").status == ProcessStatus::kExited);
  REQUIRE(second->stop("a").ok());  // an adopted process can still be stopped
  CHECK(wait_until([&] { return get(*second, "a").status == ProcessStatus::kStopped; }, 5s));
  REQUIRE(second->remove("a").ok());
  REQUIRE(second->remove("b").ok());
  CHECK(make_direct_launcher(state)->list()->empty());
}

TEST_CASE("a recorded pid now used by another program is not adopted", "[launcher]") {
  TempDir dir("launch");
  auto state = dir.path() / "processes.json";
  {
    auto l = make_direct_launcher(state);
    auto s = sleeper("x", dir);
    s.argv = {"sleep", "301"};
    REQUIRE(l->start(s).ok());
    REQUIRE(l->stop("x").ok());
    REQUIRE(wait_until([&] { return get(*l, "x").status == ProcessStatus::kStopped; }, 5s));
  }
  // Rewrite the record to say "running" with the pid of a live process that is not ours.
  std::string text;
  auto record = std::filesystem::path(state.string() + ".d") / "x.json";
  {
    std::ifstream in(record);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto at = text.find("\"status\":\"stopped\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 18, "\"status\":\"running\"");
  std::string pid_field = "\"pid\":";
  auto p = text.find(pid_field);
  REQUIRE(p != std::string::npos);
  auto end = text.find_first_of(",}", p);
  text.replace(p, end - p, pid_field + std::to_string(::getpid()));  // our own pid: alive, wrong program
  std::ofstream(record) << text;
  auto l = make_direct_launcher(state);
  CHECK(get(*l, "x").status != ProcessStatus::kRunning);
}

namespace {
std::string internal_read(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("one change writes one small record, not the whole table; an older table is converted", "[launcher][scale]") {
  TempDir dir("records");
  auto state = dir.path() / "processes.json";
  auto records = std::filesystem::path(state.string() + ".d");
  // A record's identity and last write: inode and mtime in nanoseconds (0 when there is none).
  auto inode = [&](const std::string& id) -> std::pair<ino_t, int64_t> {
    struct stat st {};
    if (::stat((records / (id + ".json")).c_str(), &st) != 0) return {0, 0};
    return {st.st_ino, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  };
  {
    auto l = make_direct_launcher(state);
    for (int i = 0; i < 20; ++i) {
      auto s = sleeper("p" + std::to_string(i), dir);
      s.argv = {"sleep", "300"};
      REQUIRE(l->start(s).ok());
    }
    std::map<std::string, std::pair<ino_t, int64_t>> before;
    for (int i = 0; i < 20; ++i) before["p" + std::to_string(i)] = inode("p" + std::to_string(i));
    REQUIRE(l->stop("p7").ok());
    REQUIRE(wait_until([&] { return get(*l, "p7").status == ProcessStatus::kStopped; }, 5s));
    for (int i = 0; i < 20; ++i) {
      std::string id = "p" + std::to_string(i);
      INFO(id);
      if (id == "p7") CHECK(internal_read(records / "p7.json").find("\"stopped\"") != std::string::npos);
      else CHECK(inode(id) == before[id]);  // untouched: same file, never rewritten
    }
    REQUIRE(l->remove("p7").ok());
    CHECK(inode("p7").first == 0);
    for (int i = 0; i < 20; ++i)
      if (i != 7) (void)l->stop("p" + std::to_string(i));
  }
  // A table in the older single-file form is read, then kept as records.
  std::ofstream(state) << R"([{"config":{"id":"old","name":"old","command":"sleep","args":["1"],"env":{},"cwd":"","stdout":"","stderr":"","pidfile":"","cid":null,"note":""},"state":{"status":"stopped","started":false,"pid":null,"started_at":null,"stopped_at":null}}])";
  auto l = make_direct_launcher(state);
  auto old = l->info("old");
  REQUIRE(old.ok());
  CHECK(old->has_value());
  CHECK_FALSE(std::filesystem::exists(state));
  CHECK(inode("old").first != 0);
}

TEST_CASE("wait_change wakes on an exit, and on nothing else until its timeout", "[launcher]") {
  TempDir dir("launch");
  auto l = make_direct_launcher();
  auto s = sleeper("w", dir);
  REQUIRE(l->start(s).ok());
  auto gen = l->wait_change(0, 0ms);
  REQUIRE(gen.ok());
  auto t0 = std::chrono::steady_clock::now();
  CHECK(*l->wait_change(*gen, 200ms) == *gen);  // nothing happened
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
  ::kill(*get(*l, "w").pid, SIGKILL);  // dies on its own: learned from its pidfd
  auto next = l->wait_change(*gen, 10s);
  REQUIRE(next.ok());
  CHECK(*next != *gen);
  CHECK(wait_until([&] { return get(*l, "w").status == ProcessStatus::kExited; }, 5s));
  CHECK(WIFSIGNALED(get(*l, "w").wait_status));
  CHECK(WTERMSIG(get(*l, "w").wait_status) == SIGKILL);
}

TEST_CASE("a killed process's record is written by its exit, and a new launcher reads the last change", "[launcher]") {
  TempDir dir("launch");
  auto state = dir.path() / "processes.json";
  auto record = [&] {
    auto text = internal::read_file(dir.path() / "processes.json.d" / "r.json");
    return text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  };
  auto l = make_direct_launcher(state);
  // Each exit's write (on the watcher's thread) and the next start's (on this one) come from
  // two threads; the record ends as the last change left it.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(l->start(sleeper("r", dir)).ok());
    REQUIRE(l->stop("r").ok());
    REQUIRE(wait_until([&] { return get(*l, "r").status == ProcessStatus::kStopped; }, 5s));
  }
  REQUIRE(wait_until([&] { return record()["state"]["status"] == "stopped"; }, 5s));
  CHECK(record()["state"]["started"] == false);
  REQUIRE(l->start(sleeper("r", dir)).ok());
  int pid = *get(*l, "r").pid;
  REQUIRE(wait_until([&] { return record()["state"]["pid"] == pid; }, 5s));
  CHECK(record()["state"]["status"] == "running");
  l.reset();  // a new launcher reads the record and adopts the process it names
  auto again = make_direct_launcher(state);
  CHECK(get(*again, "r").status == ProcessStatus::kRunning);
  CHECK(*get(*again, "r").pid == pid);
  REQUIRE(again->stop("r").ok());
  REQUIRE(wait_until([&] { return get(*again, "r").status == ProcessStatus::kStopped; }, 5s));
}

TEST_CASE("watch_changes waits for a change and answers it, or answers nothing at its timeout", "[launcher]") {
  TempDir dir("launch");
  auto l = make_direct_launcher();
  REQUIRE(l->start(sleeper("w", dir)).ok());
  auto gen = l->wait_change(0, 0ms);
  REQUIRE(gen.ok());
  auto quiet = l->watch_changes(*gen, 100ms);
  REQUIRE(quiet.ok());
  CHECK(quiet->generation == *gen);
  CHECK(quiet->changed.empty());
  CHECK(quiet->removed.empty());
  ::kill(*get(*l, "w").pid, SIGKILL);
  auto ch = l->watch_changes(*gen, 10s);
  REQUIRE(ch.ok());
  CHECK(ch->generation > *gen);
  REQUIRE(ch->changed.size() == 1);
  CHECK(ch->changed[0].status == ProcessStatus::kExited);
  auto whole = l->watch_changes(0, 10s);  // 0: the whole table at once
  REQUIRE(whole.ok());
  CHECK(whole->complete);
  CHECK(whole->changed.size() == 1);
}

TEST_CASE("a program that cannot run is an error at start, not an exit", "[launcher]") {
  TempDir dir("launch");
  auto l = make_direct_launcher();
  auto s = sleeper("n", dir);
  s.argv = {"/nonexistent/program"};
  auto r = l->start(s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  CHECK(r.error().message.find("/nonexistent/program") != std::string::npos);
  s.argv = {"sleep", "1"};
  s.cwd = dir.path() / "no-such-dir";
  CHECK_FALSE(l->start(s).ok());
}

TEST_CASE("changes() answers what changed after a generation, and the whole table when it cannot", "[launcher][scale]") {
  TempDir dir("changes");
  auto state = dir.path() / "processes.json";
  auto ids = [](const std::vector<ProcessInfo>& v) {
    std::set<std::string> out;
    for (const auto& p : v) out.insert(p.spec.id);
    return out;
  };
  uint64_t old_generation = 0;
  {
    auto l = make_direct_launcher(state);
    REQUIRE(l->start(sleeper("a", dir)).ok());
    REQUIRE(l->start(sleeper("b", dir)).ok());
    REQUIRE(l->start(sleeper("c", dir)).ok());
    auto all = l->changes(0);
    REQUIRE(all.ok());
    CHECK(all->complete);
    CHECK(ids(all->changed) == std::set<std::string>{"a", "b", "c"});
    REQUIRE(l->stop("a").ok());
    REQUIRE(wait_until([&] { return get(*l, "a").status == ProcessStatus::kStopped; }, 5s));
    auto delta = l->changes(all->generation);
    REQUIRE(delta.ok());
    CHECK_FALSE(delta->complete);
    CHECK(ids(delta->changed) == std::set<std::string>{"a"});  // b and c did not change
    REQUIRE(l->remove("a").ok());
    auto gone = l->changes(delta->generation);
    CHECK(gone->changed.empty());
    CHECK(gone->removed == std::vector<std::string>{"a"});
    CHECK(l->changes(gone->generation)->changed.empty());
    old_generation = gone->generation;
    for (const char* id : {"b", "c"}) (void)l->stop(id);
  }
  // A new launcher (a restarted supervisor) never answers a delta to a generation of the old one.
  auto l = make_direct_launcher(state);
  auto after = l->changes(old_generation);
  REQUIRE(after.ok());
  CHECK(after->complete);
  CHECK(ids(after->changed) == std::set<std::string>{"b", "c"});
}
