// SPDX-License-Identifier: Apache-2.0
// vmmctl apply's library side: reading the file, and the plan against the daemon's VMs.
#include <catch2/catch.hpp>

#include <fstream>

#include <dstackvmm/client/provision.hpp>

#include "../support/temp_dir.hpp"
#include "client/json_reply.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;

namespace {

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

const char* kCompose = R"({"manifest_version":2,"name":"web","runner":"docker-compose"})";

// What Status (non-brief) says about a VM made from `vm`.
// A StatusResponse holding `vms`, as VmmClient::status() hands it to make_plan.
std::string status_of(const Json& vms) { return Json{{"vms", vms}}.dump(); }

Json daemon_vm(const DesiredVm& vm, const std::string& id, const std::string& status) {
  Json ports = Json::array();
  for (const auto& p : vm.ports)
    ports.push_back({{"protocol", p.protocol}, {"host_address", p.address}, {"host_port", p.host_port}, {"vm_port", p.vm_port}});
  return {{"id", id},
          {"name", vm.name},
          {"status", status},
          {"configuration",
           {{"name", vm.name}, {"image", vm.image}, {"compose_file", vm.compose_file}, {"vcpu", vm.vcpu}, {"memory", vm.memory_mb},
            {"disk_size", vm.disk_gb}, {"ports", ports}, {"gpus", nullptr}, {"kms_urls", vm.kms_urls},
            {"gateway_urls", vm.gateway_urls}, {"stopped", vm.stopped}}}};
}

}  // namespace

TEST_CASE("a provision file: TOML [[vm]] tables with deploy's names, compose beside it", "[client][apply]") {
  testing::TempDir dir("prov");
  write(dir.path() / "app.json", kCompose);
  write(dir.path() / "app.env", "A=1\n");
  write(dir.path() / "vms.toml", R"(
[[vm]]
name = "web"
image = "dstack-0.6.0"
vcpu = 2
memory = "2G"
disk = 30
compose = "app.json"
ports = ["tcp:8080:80", "udp:0.0.0.0:53:53"]
env_file = "app.env"
kms_urls = ["https://kms:8000"]

[[vm]]
name = "db"
image = "dstack-0.6.0"
compose = "app.json"
stopped = true
)");
  auto vms = load_provision_file(dir.path() / "vms.toml");
  REQUIRE(vms.ok());
  REQUIRE(vms->size() == 2);
  const auto& web = (*vms)[0];
  CHECK(web.vcpu == 2);
  CHECK(web.memory_mb == 2048);
  CHECK(web.disk_gb == 30);
  CHECK(web.compose_file == kCompose);
  CHECK(web.ports == std::vector<PortMapping>{{"tcp", "127.0.0.1", 8080, 80}, {"udp", "0.0.0.0", 53, 53}});
  CHECK(web.env->front() == EnvVar{"A", "1"});
  CHECK((*vms)[1].stopped);
  CHECK((*vms)[1].memory_mb == 1024);  // deploy's defaults

  write(dir.path() / "vms.json", R"({"vm":[{"name":"j","image":"i","compose":"app.json"}]})");
  CHECK(load_provision_file(dir.path() / "vms.json")->front().name == "j");
}

TEST_CASE("a provision file with a mistake says where and what", "[client][apply]") {
  testing::TempDir dir("prov");
  write(dir.path() / "app.json", kCompose);
  auto error_of = [&](const std::string& text) {
    write(dir.path() / "bad.toml", text);
    auto r = load_provision_file(dir.path() / "bad.toml");
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  const std::string head = "[[vm]]\nname = \"a\"\nimage = \"i\"\ncompose = \"app.json\"\n";
  CHECK(error_of(head + "memroy = \"2G\"\n") == "bad.toml: vm[0]: unknown key `memroy` (did you mean `memory`?)");
  CHECK(error_of(head + "ports = [\"tcp:80\"]\n").find("bad.toml: vm[0]: port spec 'tcp:80'") == 0);
  CHECK(error_of(head + "memory = \"2X\"\n").find("vm[0]: memory size '2X'") != std::string::npos);
  CHECK(error_of(head + "vcpu = 0\n") == "bad.toml: vm[0]: `vcpu` must be a number from 1 to 1024");
  CHECK(error_of(head + head) == "bad.toml: vm[1]: the name 'a' is used twice");
  CHECK(error_of("[[vm]]\nname = \"a\"\nimage = \"i\"\ncompose = \"missing.json\"\n").find("`compose`: cannot read") != std::string::npos);
  CHECK(error_of("[[vm]]\nname = \"a\"\ncompose = \"app.json\"\n") == "bad.toml: vm[0]: `image` is required");
  CHECK(error_of("[vms]\n").find("unknown top-level key `vms`") != std::string::npos);
  CHECK(error_of("[[vm]\n").find("bad.toml:1:") != std::string::npos);
  CHECK(error_of("x = " + std::string(100, '[') + std::string(100, ']') + "\n").find("nested deeper") != std::string::npos);
}

TEST_CASE("the plan: create what is missing, update what differs, leave the rest", "[client][apply]") {
  DesiredVm web{.name = "web", .image = "img", .compose_file = kCompose, .ports = {{"tcp", "127.0.0.1", 8080, 80}}};
  DesiredVm db{.name = "db", .image = "img", .compose_file = kCompose, .stopped = true};
  DesiredVm fresh{.name = "new", .image = "img", .compose_file = kCompose};

  Json vms = Json::array({daemon_vm(web, "id-web", "running"), daemon_vm(db, "id-db", "stopped"),
                          daemon_vm({.name = "other", .image = "x"}, "id-other", "running")});
  auto same = *make_plan({web, db}, status_of(vms));
  REQUIRE(same.size() == 2);
  CHECK(same[0].action == PlanStep::Action::kNone);
  CHECK(same[1].action == PlanStep::Action::kNone);
  CHECK(plan_to_text(same) == "= web unchanged\n= db unchanged\n");

  DesiredVm moved = web;
  moved.ports[0].host_port = 8081;
  auto plan = *make_plan({moved, db, fresh}, status_of(vms));
  CHECK(plan[0].action == PlanStep::Action::kUpdate);
  REQUIRE(plan[0].changes.size() == 1);
  CHECK(plan[0].changes[0].field == "ports");
  CHECK(plan[0].changes[0].from == "tcp:127.0.0.1:8080:80");
  CHECK(plan[0].changes[0].to == "tcp:127.0.0.1:8081:80");
  CHECK(plan[0].stop_first);  // it runs, and ports take effect at start
  CHECK(plan[0].start_after);
  CHECK(plan[2].action == PlanStep::Action::kCreate);
  Json j = Json::parse(plan_to_json(plan));
  CHECK(j[0]["action"] == "update");
  CHECK(j[0]["id"] == "id-web");
  CHECK(j[2]["action"] == "create");

  DesiredVm db_up = db;
  db_up.stopped = false;
  CHECK(make_plan({db_up}, status_of(vms))->front().action == PlanStep::Action::kStart);
  DesiredVm web_down = web;
  web_down.stopped = true;
  CHECK(make_plan({web_down}, status_of(vms))->front().action == PlanStep::Action::kStop);
  DesiredVm bigger = db;
  bigger.memory_mb = 4096;
  auto grow = make_plan({bigger}, status_of(vms))->front();
  CHECK(grow.action == PlanStep::Action::kUpdate);
  CHECK_FALSE(grow.stop_first);  // already stopped
  CHECK_FALSE(grow.start_after);  // and to stay so
  DesiredVm smaller = web;
  smaller.disk_gb = 10;
  CHECK(make_plan({smaller}, status_of(vms)).error().message == "VM 'web': the disk cannot shrink from 20G to 10G");

  Json twins = Json::array({daemon_vm(web, "a", "running"), daemon_vm(web, "b", "running")});
  CHECK(make_plan({web}, status_of(twins)).error().code == ErrorCode::kFailedPrecondition);
}
