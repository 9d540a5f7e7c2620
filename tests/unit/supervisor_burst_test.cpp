// SPDX-License-Identifier: Apache-2.0
// A burst of calls to a real supervisor: none fails, and none makes the client start a
// second supervisor while the first still runs (a backlog of 5 once did both).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <dstackvmm/server/supervisor.hpp>
#include <dstackvmm/server/unix_socket.hpp>

#include "../support/temp_dir.hpp"
#include "../support/test_paths.hpp"
#include "../support/wait.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;

TEST_CASE("1000 simultaneous supervisor calls all succeed, and no second supervisor starts", "[supervisor][scale]") {
  TempDir dir{"burst"};
  auto sock = dir.path() / "s.sock";
  std::string exe = (build_root() / "tools/supervisor/supervisor").string();
  std::string sock_s = sock.string(), state = (dir.path() / "state.json").string();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl(exe.c_str(), exe.c_str(), "--uds", sock_s.c_str(), "--state-file", state.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  REQUIRE(wait_until([&] { return unix_socket_is_live(sock); }, 10s));

  std::atomic<int> respawns{0}, failures{0}, ready{0};
  SupervisorClient client(sock, [&]() -> Status {
    ++respawns;
    return make_error(ErrorCode::kUnavailable, "the test starts no supervisor");
  });
  constexpr int kCalls = 1000;
  std::atomic<bool> go{false};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i)
    callers.emplace_back([&] {
      ++ready;
      while (!go) std::this_thread::yield();
      if (!client.list().ok()) ++failures;
    });
  REQUIRE(wait_until([&] { return ready == kCalls; }, 30s, 1ms));
  go = true;
  for (auto& t : callers) t.join();
  CHECK(failures == 0);
  CHECK(respawns == 0);
  CHECK(::kill(pid, 0) == 0);  // the one supervisor still serves

  // Its /changes route: a stop is one entry on the wire, not the table.
  for (const char* id : {"x", "y", "z"}) {
    ProcessSpec spec;
    spec.id = id;
    spec.argv = {"sleep", "300"};
    REQUIRE(client.start(spec).ok());
  }
  auto all = client.changes(0);
  REQUIRE(all.ok());
  CHECK(all->complete);
  CHECK(all->changed.size() == 3);
  // Brief specs on the change feed (a table of QEMU command lines is megabytes); whole in list().
  for (const auto& p : all->changed) CHECK(p.spec.argv == std::vector<std::string>{"sleep"});
  auto listed = client.list();
  REQUIRE(listed.ok());
  for (const auto& p : *listed) CHECK(p.spec.argv == std::vector<std::string>{"sleep", "300"});
  REQUIRE(client.stop("y").ok());
  auto delta = client.changes(all->generation);
  REQUIRE(delta.ok());
  CHECK_FALSE(delta->complete);
  REQUIRE(delta->changed.size() == 1);
  CHECK(delta->changed[0].spec.id == "y");
  // The stop answers once the kill is sent; the exit it causes is a change of its own, which
  // may come after that delta: waited for, so that nothing is left to happen below.
  uint64_t base = delta->generation;
  for (auto y = delta->changed[0]; y.status == ProcessStatus::kRunning;) {
    auto exit = client.watch_changes(base, 10s);
    REQUIRE(exit.ok());
    REQUIRE(exit->changed.size() == 1);
    y = exit->changed[0];
    base = exit->generation;
  }

  // Its /running route: what runs alone, brief (what a restarted daemon re-adopts first).
  auto live = client.running();
  REQUIRE(live.ok());
  std::set<std::string> live_ids;
  for (const auto& p : *live) {
    live_ids.insert(p.spec.id);
    CHECK(p.spec.argv == std::vector<std::string>{"sleep"});
  }
  CHECK(live_ids == std::set<std::string>{"x", "z"});

  // Its /watch route: the wait and the changes in one answer. A kill's exit arrives with it.
  auto quiet = client.watch_changes(base, 200ms);  // nothing happens: at the timeout, empty
  REQUIRE(quiet.ok());
  CHECK(quiet->generation == base);
  CHECK(quiet->changed.empty());
  auto z_pid = client.info("z");
  REQUIRE((z_pid.ok() && z_pid->has_value() && (*z_pid)->pid));
  ::kill(*(*z_pid)->pid, SIGKILL);  // dies on its own: exited
  auto woke = client.watch_changes(base, 10s);
  REQUIRE(woke.ok());
  CHECK_FALSE(woke->complete);
  REQUIRE(woke->changed.size() == 1);
  CHECK(woke->changed[0].spec.id == "z");
  CHECK(woke->changed[0].status == ProcessStatus::kExited);
  CHECK(woke->generation > base);
  for (const char* id : {"x", "z"}) (void)client.stop(id);
}
