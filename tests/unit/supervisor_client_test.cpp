// SPDX-License-Identifier: Apache-2.0
// SupervisorClient against a supervisor without our routes (upstream's has /list, not
// /running or /changes): it falls back to the whole list and answers the same.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <map>
#include <thread>

#include <httplib.h>

#include <dstackvmm/server/supervisor.hpp>

#include "../support/fake_launcher.hpp"
#include "../support/temp_dir.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

namespace {
ProcessInfo entry(const std::string& id, ProcessStatus status) {
  ProcessInfo p;
  p.spec.id = id;
  p.spec.argv = {"qemu-system-x86_64", "-m", "256M"};
  p.status = status;
  p.started = status == ProcessStatus::kRunning;
  return p;
}
}  // namespace

TEST_CASE("what runs, asked of a supervisor without the /running route, comes from its list", "[supervisor]") {
  TempDir dir{"sup-client"};
  auto sock = dir.path() / "s.sock";
  FakeLauncher table;
  table.seed(entry("up", ProcessStatus::kRunning));
  table.seed(entry("down", ProcessStatus::kStopped));
  table.seed(entry("gone", ProcessStatus::kExited));
  std::map<std::string, int> asked;  // path: times
  std::mutex asked_mu;
  httplib::Server upstream;  // upstream's routes only: ours answer 404
  auto route = [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(asked_mu);
      ++asked[req.path];
    }
    for (const char* ours : {"/running", "/changes/", "/watch/", "/wait/"})
      if (req.path.rfind(ours, 0) == 0) {
        res.status = 404;
        return;
      }
    auto [status, body] = handle_supervisor_request(table, req.method, req.path, req.body, {});
    res.status = status;
    res.set_content(body, "application/json");
  };
  upstream.Get(".*", route);
  upstream.set_address_family(AF_UNIX);
  REQUIRE(upstream.bind_to_port(sock.string(), 80));
  std::thread serving([&] { upstream.listen_after_bind(); });
  struct Stop {
    httplib::Server& s;
    std::thread& t;
    ~Stop() {
      s.stop();
      t.join();
    }
  } stop{upstream, serving};

  SupervisorClient client(sock, [] { return make_error(ErrorCode::kUnavailable, "the test starts no supervisor"); });
  for (int round = 0; round < 2; ++round) {  // asked once, then remembered as missing
    auto live = client.running();
    REQUIRE(live.ok());
    REQUIRE(live->size() == 1);
    CHECK((*live)[0].spec.id == "up");
  }
  std::lock_guard lock(asked_mu);
  // Each missing route asked for once; then the whole list (changes(0), filtered) each time.
  CHECK(asked == std::map<std::string, int>{{"/running", 1}, {"/changes/0", 1}, {"/list", 2}});
}
