// SPDX-License-Identifier: Apache-2.0
// Real guests under TCG: the whole lifecycle, two at once, and a guest killed from outside.
#include <signal.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "guest_fixture.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

TEST_CASE("a guest boots, serves, shuts down gracefully and is removed", "[e2e]") {
  GuestFixture f;
  uint16_t port = free_port();
  VmConfiguration cfg = f.guest("life", port);
  auto id = f.vmm->create(cfg);
  INFO((id.ok() ? "" : id.error().message));
  REQUIRE(id.ok());
  CHECK(f.status(*id) == VmStatus::kRunning);

  // The mapped port answers with the compose hash: 9p share, networking and hostfwd all work.
  std::string hash = internal::sha256_hex(cfg.compose_file);
  std::string page;
  bool up = wait_until([&] { page = http_get(port); return !page.empty(); }, 120s, 100ms);
  INFO(f.serial_tail(*id));
  REQUIRE(up);
  CHECK(page.find("compose_hash: " + hash) != std::string::npos);

  auto qmp = f.vmm->qmp(*id);
  REQUIRE(qmp.ok());
  auto st = (*qmp)->query_status();
  REQUIRE(st.ok());
  CHECK(st->status == "running");
  CHECK(st->running);
  qmp->reset();

  // The guest's notifications reach the host API through its channel.
  CHECK(f.wait_guest_event(*id, "boot.progress", "done", 30s));
  auto info = *f.vmm->info(*id);
  CHECK(info.uptime != "never");
  // Each notification arrives once: the guest retries only when it got no 200.
  CHECK(std::count_if(info.events.begin(), info.events.end(),
                      [](const GuestEvent& e) { return e.event == "boot.progress" && e.body == "done"; }) == 1);
  CHECK(info.configuration.compose_file == cfg.compose_file);
  CHECK(info.app_id == hash.substr(0, 40));

  auto agent = f.vmm->guest_agent_call(*id, "Info");
  REQUIRE(agent.ok());
  CHECK(nlohmann::json::parse(*agent)["app_id"] == hash.substr(0, 40));

  REQUIRE(f.vmm->shutdown(*id).ok());
  CHECK(f.wait_status(*id, VmStatus::kStopped, 60s));
  auto after = *f.vmm->info(*id);
  bool saw_poweroff = false;
  for (const auto& e : after.events) saw_poweroff |= e.event == "shutdown.progress" && e.body == "powering off";
  CHECK(saw_poweroff);

  auto workdir = f.dir.path() / "vms" / *id;
  REQUIRE(std::filesystem::exists(workdir));
  REQUIRE(f.vmm->remove(*id).ok());
  CHECK(f.vmm->wait_for(*id, [](VmStatus) { return false; }, std::chrono::steady_clock::now() + 30s).error().code ==
        ErrorCode::kNotFound);
  // A stopped VM leaves at once; its folder is deleted behind it.
  CHECK(wait_until([&] { return !std::filesystem::exists(workdir); }, 10s));
}

TEST_CASE("two guests at once get distinct CIDs and ports, and both serve", "[e2e]") {
  GuestFixture f;
  uint16_t p1 = free_port(), p2 = free_port();
  auto a = f.vmm->create(f.guest("a", p1));
  auto b = f.vmm->create(f.guest("b", p2));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto ia = *f.vmm->info(*a), ib = *f.vmm->info(*b);
  CHECK(ia.cid != ib.cid);
  CHECK(ia.agent_port != ib.agent_port);
  CHECK(wait_until([&] { return !http_get(p1).empty() && !http_get(p2).empty(); }, 180s, 100ms));
  CHECK(f.vmm->guest_agent_call(*a, "SysInfo").ok());
  CHECK(f.vmm->guest_agent_call(*b, "NetworkInfo").ok());

  // The same host port for a third VM is refused, naming the VM that holds it.
  auto c = f.vmm->create(f.guest("c", p1));
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message == "host port mapping conflicts with VM " + *a + ": tcp 127.0.0.1:" + std::to_string(p1));
  REQUIRE(f.vmm->stop(*a).ok());
  REQUIRE(f.vmm->stop(*b).ok());
  CHECK(f.status(*a) == VmStatus::kStopped);
}

TEST_CASE("a guest whose QEMU is killed from outside shows exited", "[e2e]") {
  GuestFixture f([](Config& c) { c.cvm.auto_restart.enabled = false; });
  auto id = f.vmm->create(f.guest("victim", 0));
  REQUIRE(id.ok());
  auto pid = f.vmm->info(*id)->pid;
  REQUIRE(pid);
  REQUIRE(::kill(*pid, SIGKILL) == 0);
  CHECK(f.wait_status(*id, VmStatus::kExited, 10s));
  CHECK(f.vmm->info(*id)->exited_at != "never");
  // It can be started again.
  REQUIRE(f.vmm->start(*id).ok());
  CHECK(f.status(*id) == VmStatus::kRunning);
  REQUIRE(f.vmm->stop(*id).ok());
}
