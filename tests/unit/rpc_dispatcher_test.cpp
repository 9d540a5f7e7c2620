// SPDX-License-Identifier: Apache-2.0
// The prpc dispatcher without HTTP: method table, prefixes, error shape.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <dstackvmm/rpc.hpp>
#include <dstackvmm/version.hpp>

using namespace dstackvmm;
using nlohmann::json;

TEST_CASE("Version answers the upstream shape", "[rpc]") {
  RpcDispatcher d(Config{});
  for (const char* name : {"Version", "Teepod.Version", "Vmm.Version"}) {
    auto r = d.call(name, "");
    REQUIRE(r.status == 200);
    auto j = json::parse(r.body);
    CHECK(j["version"] == std::string(api_version()));
    CHECK(j["rev"].get<std::string>().rfind("git:", 0) == 0);
  }
  for (const char* body : {"null", "{}", ""}) CHECK(d.call("Version", body).status == 200);
}

TEST_CASE("GetMeta reports config values and detects bridges from sysfs", "[rpc]") {
  auto root = std::filesystem::temp_directory_path() / ("rpc-sysfs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "class/net/eth0");
  Config c;
  c.cvm.cid_pool_size = 7;
  c.cvm.kms_urls = {"https://a", "https://b"};
  {
    RpcDispatcher d(c, RpcOptions{root});
    auto j = json::parse(d.call("GetMeta", "{}").body);
    CHECK(j["kms"]["url"] == "https://a");
    CHECK(j["kms"]["urls"].size() == 2);
    CHECK(j["resources"]["max_cvm_number"] == 7);
    CHECK(j["resources"]["max_allocable_vcpu"] == 20);
    CHECK(j["gateway"]["agent_port"] == 8090);
    CHECK(j["networking"]["supported_modes"] == json::array({"user"}));
    CHECK(j["networking"]["default_mode"] == "user");
  }
  std::filesystem::create_directories(root / "class/net/virbr0/bridge");
  {
    RpcDispatcher d(c, RpcOptions{root});
    auto j = json::parse(d.call("GetMeta", "").body);
    CHECK(j["networking"]["supported_modes"] == json::array({"user", "bridge"}));
  }
  std::filesystem::remove_all(root);
}

TEST_CASE("unknown methods and bad JSON are 400 with a pretty error object", "[rpc]") {
  RpcDispatcher d(Config{});
  auto r = d.call("Nope", "{}");
  CHECK(r.status == 400);
  CHECK(r.body == "{\n  \"error\": \"Service not found: Nope\"\n}");
  auto bad = d.call("Version", "{oops");
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body)["error"] == "failed to decode request: invalid JSON");
}
