// SPDX-License-Identifier: Apache-2.0
// The direct launcher with a state file: a new launcher re-adopts live processes (verified by
// pid and command line) and reports the ones that died meanwhile; SIGKILL stops adopted ones.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>

#include <dstackvmm/process_launcher.hpp>

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
bool running(ProcessLauncher& l, const std::string& id) {
  auto i = l.info(id);
  return i && i->status == ProcessStatus::kRunning;
}
}  // namespace

TEST_CASE("processes outlive their launcher and are re-adopted from the state file", "[launcher]") {
  TempDir dir("launch");
  auto state = dir.path() / "processes.json";
  int a_pid = 0, b_pid = 0;
  {
    auto first = make_direct_launcher(state);
    REQUIRE(first->start(sleeper("a", dir)).ok());
    REQUIRE(first->start(sleeper("b", dir)).ok());
    a_pid = *first->info("a")->pid;
    b_pid = *first->info("b")->pid;
    CHECK(first->start(sleeper("a", dir)).error().message == "Process is already running");
  }  // the launcher goes away; its children do not
  REQUIRE(::kill(a_pid, 0) == 0);
  REQUIRE(::kill(b_pid, SIGKILL) == 0);  // b dies while nobody watches
  REQUIRE(wait_until([&] { return ::kill(b_pid, 0) != 0 || std::filesystem::exists("/proc/" + std::to_string(b_pid) + "/cmdline") == false; }, 5s));

  auto second = make_direct_launcher(state);
  CHECK(running(*second, "a"));
  CHECK(second->info("a")->pid == a_pid);
  CHECK(second->info("a")->started_at);
  CHECK(second->info("b")->status == ProcessStatus::kExited);
  REQUIRE(second->stop("a").ok());  // an adopted process can still be stopped
  CHECK(wait_until([&] { return second->info("a")->status == ProcessStatus::kStopped; }, 5s));
  REQUIRE(second->remove("a").ok());
  REQUIRE(second->remove("b").ok());
  CHECK(make_direct_launcher(state)->list().empty());
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
    REQUIRE(wait_until([&] { return l->info("x")->status == ProcessStatus::kStopped; }, 5s));
  }
  // Rewrite the record to say "running" with the pid of a live process that is not ours.
  std::string text;
  {
    std::ifstream in(state);
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
  std::ofstream(state) << text;
  auto l = make_direct_launcher(state);
  CHECK(l->info("x")->status != ProcessStatus::kRunning);
}
