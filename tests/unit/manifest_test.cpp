// SPDX-License-Identifier: Apache-2.0
// vm-manifest.json: round-trips, and what upstream writes loads.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <dstackvmm/manifest.hpp>

using namespace dstackvmm;

TEST_CASE("a manifest round-trips through JSON", "[manifest]") {
  VmManifest m;
  m.id = "vm-123";
  m.name = "web";
  m.app_id = std::string(40, 'a');
  m.vcpu = 2;
  m.memory = 2048;
  m.disk_size = 30;
  m.image = "dstack-0.5.4";
  m.port_map = {{"tcp", "127.0.0.1", 8080, 80}};
  m.created_at_ms = 1700000000000;
  m.gpus = GpuSelection{"listed", {"18:00.0"}, {}};
  m.kms_urls = {"https://kms:8000"};
  m.simulated_tee = "dstack-tdx";
  m.networks = {{"bridge", "virbr0", "", "", "", false, ""}};
  m.volumes = {"/data/vol.img"};
  auto back = manifest_from_json(manifest_to_json(m));
  REQUIRE(back.ok());
  CHECK(*back == m);
  auto j = nlohmann::json::parse(manifest_to_json(m));
  CHECK(j["networking"]["bridge"] == "virbr0");  // legacy copy for older readers
  CHECK(j["port_map"][0]["from"] == 8080);
  CHECK(j["gpus"]["gpus"][0]["slot"] == "18:00.0");
}

TEST_CASE("a manifest written by upstream loads, legacy networking included", "[manifest]") {
  const char* upstream = R"({"id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","name":"web","app_id":"ab12","vcpu":2,
    "memory":4096,"disk_size":30,"image":"dstack-0.5.3","port_map":[{"address":"0.0.0.0","protocol":"tcp","from":8080,"to":80}],
    "created_at_ms":1700000000000,"hugepages":false,"pin_numa":false,"kms_urls":[],"gateway_urls":[],"no_tee":false,
    "swtpm":false,"networking":{"mode":"user","bridge":"","mac_prefix":"","net":"10.0.2.0/24","dhcp_start":"10.0.2.10","restrict":false,"netdev":""},
    "volumes":[],"future_field":1})";
  auto m = manifest_from_json(upstream);
  REQUIRE(m.ok());
  CHECK(m->vcpu == 2);
  CHECK(m->port_map == std::vector<PortMapping>{{"tcp", "0.0.0.0", 8080, 80}});
  REQUIRE(m->networks.size() == 1);
  CHECK(m->networks[0].net == "10.0.2.0/24");
  CHECK_FALSE(m->gpus);
}

TEST_CASE("a broken manifest names the field", "[manifest]") {
  CHECK(manifest_from_json("[]").error().message == "vm-manifest.json is not a JSON object");
  auto r = manifest_from_json(R"({"id":"x","image":"i","vcpu":"two"})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("vm-manifest.json: field 'vcpu'", 0) == 0);
}
