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
  // Each of the three boots has its launch record: the argv that ran, and how it ended.
  CHECK(wait_until([&] {
    auto l = f.vmm->launches(*id);
    return l.ok() && l->size() == 3 && l->back().exit.has_value();
  }, 10s));
  auto launches = *f.vmm->launches(*id);
  REQUIRE(launches.size() == 3);
  for (const auto& l : launches) {
    REQUIRE(l.exit.has_value());
    CHECK(l.exit->exit_signal == SIGKILL);
    CHECK(l.argv == *f.vmm->qemu_command(*id));
    CHECK(l.cid == f.vmm->info(*id)->cid);
  }
}

TEST_CASE("a guest that fails at boot is a boot loop the launch records explain", "[e2e][restart]") {
  GuestFixture f([](Config& c) { c.cvm.auto_restart = {true, 1, 1, 1, 1, 300}; });  // 1 retry
  VmConfiguration cfg = f.guest("crashy", 0);
  cfg.compose_file = R"({"manifest_version":2,"name":"crashy","runner":"docker-compose","e2e_crash_at_boot":true})";
  auto id = f.vmm->create(cfg);
  REQUIRE(id.ok());
  // Two boots (the first and its one retry), each ended by the guest itself.
  CHECK(wait_until([&] {
    auto l = f.vmm->launches(*id);
    return l.ok() && l->size() == 2 && l->back().exit.has_value();
  }, 90s));
  auto launches = *f.vmm->launches(*id);
  REQUIRE(launches.size() == 2);
  for (const auto& l : launches) {
    REQUIRE(l.exit.has_value());
    CHECK(l.exit->exit_code == 0);  // a guest power-off: QEMU exits 0, but the VM was meant to run
    bool said = false;
    for (const auto& line : l.exit->serial_tail) said = said || line.find("E2E-CRASH: the app failed to start") != std::string::npos;
    CHECK(said);
    // The hashes of what it booted, once the background hashing is done.
    for (const auto& file : l.files) CHECK(file.size > 0);
  }
  CHECK(wait_until([&] {
    auto l = f.vmm->launches(*id);
    for (const auto& file : l->front().files) if (file.sha256.size() != 64) return false;
    return true;
  }, 30s));
  auto kinds = [&] {
    std::vector<std::string> k;
    for (const auto& a : f.vmm->activity(0, 1000, *id, std::chrono::steady_clock::now()).entries) k.push_back(a.kind);
    return k;
  };
  CHECK(wait_until([&] { auto k = kinds(); return !k.empty() && k.back() == "restart_exhausted"; }, 30s));
  // "guest": the boot.progress "network up" each boot sends before it fails.
  CHECK(kinds() == std::vector<std::string>{"created", "started", "guest", "exited", "restarting", "started", "guest", "exited",
                                            "restart_exhausted"});
}

TEST_CASE("a guest kernel that panics at boot reboots in its QEMU, and each panic is on record", "[e2e][restart]") {
  GuestFixture f;
  VmConfiguration cfg = f.guest("panicky", 0);
  cfg.compose_file = R"({"manifest_version":2,"name":"panicky","runner":"docker-compose","e2e_panic_at_boot":true})";
  auto id = f.vmm->create(cfg);
  REQUIRE(id.ok());
  // Its init exits, the kernel panics and reboots in place (panic=-1): two rounds of that.
  CHECK(wait_until([&] {
    auto l = f.vmm->launches(*id);
    return l.ok() && !l->empty() && l->back().panic_count >= 2;
  }, 120s));
  auto launches = *f.vmm->launches(*id);
  REQUIRE(launches.size() == 1);  // one QEMU all along: it never exited
  CHECK_FALSE(launches[0].exit.has_value());
  CHECK(f.vmm->info(*id)->status == VmStatus::kRunning);
  REQUIRE(launches[0].panics.size() >= 2);
  for (const auto& p : launches[0].panics) {
    CHECK(p.message.find("Attempted to kill init") != std::string::npos);
    bool said = false;  // the guest's last words before the panic are in the tail
    for (const auto& line : p.serial_tail) said = said || line.find("E2E-PANIC: init exits") != std::string::npos;
    CHECK(said);
  }
  // Each is in the journal (what `vmmctl events` shows) and in the VM's events.
  size_t journal = 0;
  for (const auto& a : f.vmm->activity(0, 1000, *id, std::chrono::steady_clock::now()).entries)
    if (a.kind == "panicked") journal += a.detail.find("Attempted to kill init") != std::string::npos;
  CHECK(journal >= 2);
  VmInfo info = *f.vmm->info(*id);
  size_t events = 0;
  for (const auto& e : info.events) events += e.event == "vmm.guest_panic";
  CHECK(events >= 2);
  REQUIRE(f.vmm->stop(*id).ok());
}
