// SPDX-License-Identifier: Apache-2.0
// Auto-restart on real guests: a QEMU killed with SIGKILL comes back within the backoff, and
// after max_retries quick deaths the VM stays exited with an event saying why.
#include <signal.h>

#include <catch2/catch.hpp>

#include "guest_fixture.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

namespace {
std::optional<int> pid_of(GuestFixture& f, const std::string& id) {
  auto i = f.vmm->info(id);
  return i.ok() && i->status == VmStatus::kRunning ? i->pid : std::nullopt;
}
}  // namespace

TEST_CASE("a killed guest is restarted after the backoff, until retries run out", "[e2e][restart]") {
  GuestFixture f([](Config& c) { c.cvm.auto_restart = {true, 1, 2, 1, 2, 300}; });  // interval 1 s, 2 retries
  auto id = f.vmm->create(f.guest("phoenix", 0));
  REQUIRE(id.ok());
  for (int round = 1; round <= 2; ++round) {
    size_t seen = f.guest_events_seen();
    auto pid = pid_of(f, *id);
    REQUIRE(pid);
    REQUIRE(::kill(*pid, SIGKILL) == 0);
    INFO("round " << round);
    // Back with a new QEMU within the backoff (1-2 s) plus a tick or two.
    CHECK(wait_until([&] { auto p = pid_of(f, *id); return p && *p != *pid; }, 30s));
    CHECK(f.wait_guest_event(*id, "boot.progress", "done", 60s, seen));
  }
  auto pid = pid_of(f, *id);
  REQUIRE(pid);
  REQUIRE(::kill(*pid, SIGKILL) == 0);
  auto exhausted = [&] {
    VmInfo info = *f.vmm->info(*id);  // a copy: never iterate a temporary's member
    for (const auto& e : info.events)
      if (e.event == "vmm.auto_restart.exhausted") return true;
    return false;
  };
  CHECK(wait_until(exhausted, 30s));
  f.vmm->auto_restart_tick();  // and nothing brings it back
  CHECK(f.status(*id) == VmStatus::kExited);
  CHECK(f.vmm->info(*id)->events.back().body == "Automatic restart stopped after 2 failed attempts");
}
