// SPDX-License-Identifier: Apache-2.0
// prpc's protobuf mode with the C++ classes generated from our .proto files: requests built
// and answers read with them, compared with the same calls in JSON mode.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <dstackvmm/server/rpc.hpp>

#include "../support/manager_env.hpp"
#include "guest_api.pb.h"
#include "prpc.pb.h"
#include "vmm_rpc.pb.h"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using nlohmann::json;

namespace {
RpcReply proto_call(const RpcDispatcher& d, const char* method, const google::protobuf::Message& in) {
  return d.call_protobuf(RpcService::kVmm, method, in.SerializeAsString());
}
}  // namespace

TEST_CASE("protobuf mode: CreateVm, Status and GetInfo with the generated classes match JSON mode", "[rpc][protobuf]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  // An encrypted env is at least 60 bytes (key, nonce, tag); its bytes must round-trip.
  const std::string kEnv = std::string("\x00\xff\x10", 3) + std::string(57, '\0');
  vmm::VmConfiguration c;
  c.set_name("pb");
  c.set_image("img");
  c.set_compose_file(R"({"manifest_version":2,"name":"app","runner":"docker-compose"})");
  c.set_vcpu(2);
  c.set_memory(256);
  c.set_disk_size(1);
  c.set_encrypted_env(kEnv);
  c.set_app_id(std::string(40, 'a'));
  c.set_stopped(true);
  auto created = proto_call(d, "CreateVm", c);
  REQUIRE(created.status == 200);
  CHECK(created.content_type == "application/octet-stream");
  vmm::Id id;
  REQUIRE(id.ParseFromString(created.body));
  CHECK(id.id().size() == 36);

  vmm::Id ask;
  ask.set_id(id.id());
  vmm::GetInfoResponse info;
  REQUIRE(info.ParseFromString(proto_call(d, "GetInfo", ask).body));
  json j = json::parse(d.call("GetInfo", json{{"id", id.id()}}.dump()).body);
  REQUIRE(info.found());
  CHECK(info.info().id() == j["info"]["id"]);
  CHECK(info.info().status() == j["info"]["status"]);
  CHECK(info.info().configuration().encrypted_env() == kEnv);
  CHECK(j["info"]["configuration"]["encrypted_env"] == "00ff10" + std::string(57 * 2, '0'));
  CHECK(info.info().configuration().app_id() == j["info"]["configuration"]["app_id"]);
  CHECK(info.info().configuration().vcpu() == 2);
  CHECK_FALSE(info.info().has_app_url());  // null in JSON, unset in protobuf
  CHECK(j["info"]["app_url"].is_null());
  CHECK(info.info().interfaces_size() == static_cast<int>(j["info"]["interfaces"].size()));

  vmm::StatusRequest all;
  vmm::StatusResponse status;
  REQUIRE(status.ParseFromString(proto_call(d, "Status", all).body));
  json js = json::parse(d.call("Status", "{}").body);
  CHECK(status.total() == js["total"]);
  REQUIRE(status.vms_size() == 1);
  CHECK(status.vms(0).name() == "pb");

  // Empty in, Empty out: a 0-byte body both ways.
  auto version = d.call_protobuf(RpcService::kVmm, "Version", "");
  vmm::VersionResponse v;
  REQUIRE(v.ParseFromString(version.body));
  CHECK(v.version() == json::parse(d.call("Version", "").body)["version"]);
  auto stop = proto_call(d, "StopVm", ask);
  CHECK(stop.status == 200);
  CHECK(stop.body.empty());
}

TEST_CASE("protobuf mode: errors are an encoded prpc.PrpcError with 400", "[rpc][protobuf]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  vmm::Id nobody;
  nobody.set_id("no-such-vm");
  auto r = proto_call(d, "StartVm", nobody);
  CHECK(r.status == 400);
  CHECK(r.error_code == "not_found");
  prpc::PrpcError error;
  REQUIRE(error.ParseFromString(r.body));
  CHECK(error.message() == json::parse(d.call("StartVm", R"({"id":"no-such-vm"})").body)["error"]);
  prpc::PrpcError unknown;
  REQUIRE(unknown.ParseFromString(d.call_protobuf(RpcService::kVmm, "Nope", "").body));
  CHECK(unknown.message() == "Service not found: Nope");
  prpc::PrpcError garbage;
  REQUIRE(garbage.ParseFromString(d.call_protobuf(RpcService::kVmm, "Status", "\xff\xff\xff").body));
  CHECK(garbage.message().find("failed to decode request") == 0);
  guest_api::Id gid;
  gid.set_id("no-such-vm");
  prpc::PrpcError guest;
  REQUIRE(guest.ParseFromString(d.call_protobuf(RpcService::kGuest, "SysInfo", gid.SerializeAsString()).body));
  CHECK(guest.message() == "vm not found");
}
