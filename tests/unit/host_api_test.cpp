// SPDX-License-Identifier: Apache-2.0
// The host API handler: Info, Notify and GetSealingKey's failure modes, without a guest.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "../support/manager_env.hpp"
#include "rpc/host_api.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using nlohmann::json;

TEST_CASE("host API Info and Notify act for the calling VM", "[host-api]") {
  ManagerEnv e;
  VmConfiguration c;
  c.name = "g";
  c.image = "img";
  c.compose_file = R"({"manifest_version":2,"name":"a","runner":"r"})";
  c.memory = 256;
  c.disk_size = 1;
  auto id = *e.vmm->create(c);
  auto [s1, info] = rpc::handle_host_api(*e.vmm, id, "Info", "null");
  CHECK(s1 == 200);
  CHECK(json::parse(info) == json{{"name", "dstack VMM"}, {"version", "0.6.0"}});
  auto [s2, body] = rpc::handle_host_api(*e.vmm, id, "Notify", R"({"event":"boot.progress","payload":"done"})");
  CHECK(s2 == 200);
  CHECK(body == "null");
  CHECK(e.vmm->info(id)->boot_progress == "done");
  CHECK(rpc::handle_host_api(*e.vmm, id, "Notify", "{bad").first == 400);
  CHECK(json::parse(rpc::handle_host_api(*e.vmm, id, "Reboot", "").second)["error"] == "Service not found: Reboot");
}

TEST_CASE("GetSealingKey fails clearly", "[host-api]") {
  KeyProviderConfig kp;
  kp.enabled = false;
  CHECK(rpc::get_sealing_key(kp, "q").error().message == "Key provider is not enabled");
  kp.enabled = true;
  CHECK(rpc::get_sealing_key(kp, std::string((1u << 20) + 1, 'q')).error().message == "Quote is too long");
  kp.port = 1;  // nothing listens on port 1
  auto r = rpc::get_sealing_key(kp, "q");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("Failed to get sealing key from key provider: cannot connect to 127.0.0.1:1", 0) == 0);
  ManagerEnv e([](Config& c) { c.key_provider.enabled = false; });
  auto [status, body] = rpc::handle_host_api(*e.vmm, "x", "GetSealingKey", R"({"quote":"zz"})");
  CHECK(status == 400);
  CHECK(json::parse(body)["error"] == "failed to decode request: field `quote`: invalid hex string");
}
