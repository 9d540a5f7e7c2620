// SPDX-License-Identifier: Apache-2.0
// The prpc services without HTTP: JSON text in, upstream's shapes and messages out.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <dstackvmm/server/rpc.hpp>
#include <dstackvmm/version.hpp>

#include "../support/loopback.hpp"
#include "../support/manager_env.hpp"
#include "../support/wait.hpp"
#include "rpc/status_cache.hpp"
#include "wire/json_codec.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using nlohmann::json;

namespace {

const char* kCompose = R"({"manifest_version":2,"name":"app","runner":"docker-compose"})";

json ok(const RpcReply& r) {
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

std::string err(const RpcReply& r) {
  INFO(r.body);
  REQUIRE(r.status == 400);
  CHECK(r.body.find("{\n  \"error\": ") == 0);  // pretty, single key, as upstream
  return json::parse(r.body)["error"];
}

std::string create(const RpcDispatcher& d, json extra = json::object()) {
  json req{{"name", "web"}, {"image", "img"}, {"compose_file", kCompose}, {"vcpu", 1}, {"memory", 256}, {"disk_size", 1}};
  req.update(extra);
  return ok(d.call("CreateVm", req.dump()))["id"];
}

}  // namespace

TEST_CASE("Version and GetMeta answer the upstream shapes", "[rpc]") {
  ManagerEnv e([](Config& c) { c.cvm.cid_pool_size = 7; c.cvm.kms_urls = {"https://a", "https://b"}; });
  RpcDispatcher d(*e.vmm);
  for (const char* name : {"Version", "Teepod.Version", "Vmm.Version"}) {
    auto v = ok(d.call(name, ""));
    CHECK(v["version"] == std::string(api_version()));
    CHECK(v["rev"].get<std::string>().rfind("git:", 0) == 0);
  }
  for (const char* body : {"null", "{}", ""}) CHECK(d.call("Version", body).status == 200);
  auto m = ok(d.call("GetMeta", "{}"));
  CHECK(m["kms"]["url"] == "https://a");
  CHECK(m["resources"]["max_cvm_number"] == 7);
  CHECK(m["networking"]["supported_modes"] == json::array({"user"}));
  write_file(e.dir.path() / "sys/class/net/virbr0/bridge/x", "");
  CHECK(ok(d.call("GetMeta", ""))["networking"]["supported_modes"] == json::array({"user", "bridge"}));
  CHECK(d.methods(RpcService::kVmm).size() == 23 + 1);  // upstream's 23 and our CheckHost
}

TEST_CASE("the VM lifecycle over prpc JSON", "[rpc]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::string id = create(d, {{"ports", {{{"protocol", "tcp"}, {"host_port", 8080}, {"vm_port", 80}, {"host_address", ""}}}},
                              {"encrypted_env", "0xdeadBEEF" + std::string(56 * 2, '0')}, {"swap_size", 5}});  // unknown field ignored
  auto status = ok(d.call("Status", R"({"brief":true})"));
  REQUIRE(status["vms"].size() == 1);
  CHECK(status["total"] == 1);
  CHECK(status["port_mapping_enabled"] == true);
  auto vm = status["vms"][0];
  CHECK(vm["id"] == id);
  CHECK(vm["status"] == "running");
  CHECK(vm["configuration"].is_null());
  CHECK(vm["app_url"].is_null());
  CHECK(vm["interfaces"][0]["backend"] == "slirp");

  auto info = ok(d.call(RpcService::kVmm, "GetInfo", RpcRequest{{}, "id=" + id, true}));
  CHECK(info["found"] == true);
  auto cfg = info["info"]["configuration"];
  CHECK(cfg["encrypted_env"] == "deadbeef" + std::string(56 * 2, '0'));  // bytes: lowercase hex, no 0x
  CHECK(cfg["ports"][0]["host_address"] == "127.0.0.1");  // filled from the config default
  CHECK(cfg["compose_file"] == kCompose);
  CHECK(ok(d.call("GetInfo", R"({"id":"11111111-2222-3333-4444-555555555555"})")) == json{{"found", false}, {"info", nullptr}});

  CHECK(d.call("StopVm", json{{"id", id}}.dump()).body == "null");  // Empty output is null, never {}
  CHECK(ok(d.call("Status", "{}"))["vms"][0]["status"] == "stopped");
  CHECK(d.call("StartVm", json{{"id", id}}.dump()).status == 200);
  CHECK(err(d.call("StartVm", R"({"id":"../etc"})")) == "Failed to start VM: invalid VM id: '../etc'");
  CHECK(ok(d.call("GetInfo", R"({"id":"../etc"})")) == json{{"found", false}, {"info", nullptr}});
  CHECK(err(d.call("RemoveVm", R"({"id":"11111111-2222-3333-4444-555555555555"})")) == "Failed to remove VM: VM not found");
  CHECK(err(d.call("ResizeVm", json{{"id", id}}.dump())) == "resize request contains no updates");
  CHECK(err(d.call("ResizeVm", json{{"id", id}, {"vcpu", 0}}.dump())) == "vcpu must be greater than zero");
  CHECK(err(d.call("ResizeVm", json{{"id", id}, {"vcpu", 2}}.dump())) == "vm should be stopped before resize: " + id);

  auto upd = ok(d.call("UpdateVm", json{{"id", id}, {"compose_file", R"({"manifest_version":"3","name":"b","runner":"r"})"}}.dump()));
  CHECK(upd["id"].get<std::string>().size() == 40);  // the new app id, not the VM id
  CHECK(ok(d.call("UpgradeApp", json{{"id", id}, {"user_config", "x"}}.dump()))["id"] == "");

  CHECK(d.call("RemoveVm", json{{"id", id}}.dump()).status == 200);
  auto after = ok(d.call("Status", "{}"));
  CHECK((after["vms"].empty() || after["vms"][0]["status"] == "removing"));
}

TEST_CASE("Status filters by ids and keyword and pages", "[rpc]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::vector<std::string> ids;
  for (const char* n : {"alpha", "beta", "gamma"}) {
    ids.push_back(create(d, {{"name", n}, {"stopped", true}}));
    e.now_s += 1;  // distinct creation times: Status orders by them
  }
  CHECK(ok(d.call("Status", R"({"keyword":"et"})"))["vms"].size() == 1);
  CHECK(ok(d.call(RpcService::kVmm, "Status", RpcRequest{{}, "ids[0]=" + ids[0] + "&ids[1]=" + ids[2], true}))["vms"].size() == 2);
  auto page = ok(d.call("Status", R"({"page":2,"page_size":2})"));
  CHECK(page["total"] == 3);
  REQUIRE(page["vms"].size() == 1);
  CHECK(page["vms"][0]["name"] == "gamma");  // by creation time
}

TEST_CASE("bad requests get upstream's errors", "[rpc]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  CHECK(err(d.call("Nope", "{}")) == "Service not found: Nope");
  CHECK(err(d.call("Version", "{oops")) == "failed to decode request: invalid JSON");
  CHECK(err(d.call("StartVm", "[1]")) == "failed to decode request: expected a JSON object");
  CHECK(err(d.call("CreateVm", R"({"vcpu":"many"})")) == "failed to decode request: field `vcpu`: expected a u32, got \"many\"");
  CHECK(err(d.call("CreateVm", R"({"encrypted_env":"xyz"})")) == "failed to decode request: field `encrypted_env`: odd number of hex digits");
  CHECK(err(d.call("CreateVm", json{{"name", "a"}, {"image", "img"}, {"compose_file", kCompose}, {"vcpu", 1}, {"memory", 1},
                                    {"disk_size", 1}, {"gpus", {{"attach_mode", "bogus"}}}}.dump())) ==
        "Invalid GPU attach mode: bogus");
  CHECK(err(d.call("GetComposeHash", R"({"name":"x","compose_file":"{}"})")) == "Invalid compose file: missing field `manifest_version`");
  CHECK(ok(d.call("GetComposeHash", json{{"name", "x"}, {"compose_file", kCompose}}.dump()))["hash"].get<std::string>().size() == 64);
  CHECK(err(d.call("PullRegistryImage", R"({"tag":"0.5.4"})")) == "image registry is not configured");
  CHECK(ok(d.call("ListRegistryImages", "")) == json{{"images", json::array()}});
  CHECK(err(d.call("GetAppEnvEncryptPubKey", R"({"app_id":"00"})")).rfind("Failed to reach KMS at http://127.0.0.1:8081", 0) == 0);
  CHECK(err(d.call(RpcService::kGuest, "Info", RpcRequest{R"({"id":"11111111-2222-3333-4444-555555555555"})", {}, false})) == "vm not found");
  CHECK(err(d.call(RpcService::kGuest, "Reboot", RpcRequest{"{}", {}, false})) == "Service not found: Reboot");
}

TEST_CASE("images, GPUs and processes over prpc", "[rpc]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  auto images = ok(d.call("ListImages", ""))["images"];
  REQUIRE(images.size() == 1);
  CHECK(images[0]["name"] == "img");
  CHECK(images[0]["is_dev"] == true);
  CHECK(json::parse(images[0]["description"].get<std::string>())["kernel"] == "k");
  CHECK(ok(d.call("ListGpus", "")) == json{{"gpus", json::array()}, {"allow_attach_all", true}});

  std::string id = create(d);
  CHECK(err(d.call("DeleteImage", R"({"id":"img"})")) == "cannot delete image 'img': in use by VM 'web'");
  for (const char* bad : {R"({"id":"../x"})", R"({"id":"."})", R"({"id":".."})", R"({"id":""})", R"({"id":"a/b"})", R"({"id":".tmp-pull-x"})"})
    CHECK(err(d.call("DeleteImage", bad)).rfind("invalid image name: ", 0) == 0);
  CHECK(std::filesystem::exists(e.config.image.path + "/img/metadata.json"));  // nothing was touched
  CHECK(err(d.call("DeleteImage", R"({"id":"nope"})")) == "image 'nope' not found");
  auto procs = ok(d.call("SvList", ""))["processes"];
  REQUIRE(procs.size() == 1);
  CHECK(procs[0]["id"] == id);
  CHECK(procs[0]["status"] == "running");
  CHECK(procs[0]["note"] == R"({"kind":"cvm","live_for":null,"serial_logappend":true})");
  CHECK(err(d.call("SvStop", R"({"id":"nope"})")) == "Supervisor process not found");
  CHECK(d.call("SvStop", json{{"id", id}}.dump()).status == 200);
  CHECK(ok(d.call("SvList", ""))["processes"][0]["status"] == "stopped");
  CHECK(d.call("SvRemove", json{{"id", id}}.dump()).status == 200);
  CHECK(err(d.call("SvRemove", json{{"id", id}}.dump())) == "Process not found");
  auto reload = ok(d.call("ReloadVms", ""));
  CHECK(reload == json{{"loaded", 0}, {"updated", 1}, {"removed", 0}});
}

TEST_CASE("the OpenAPI document comes from the method table and every $ref resolves", "[rpc][openapi]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  auto doc = json::parse(d.openapi_json());
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["info"]["title"] == "dstack-vmm RPC");
  CHECK(doc["paths"].size() == 23 + 1 + 5);
  const auto& create = doc["paths"]["/prpc/CreateVm"]["post"];
  CHECK(create["operationId"] == "vmm_Vmm_CreateVm");
  CHECK(create["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/vmm.VmConfiguration");
  CHECK_FALSE(doc["paths"]["/prpc/Version"]["post"].contains("requestBody"));  // Empty input
  CHECK(doc["paths"]["/guest/SysInfo"]["post"]["operationId"] == "guest_api_ProxiedGuestApi_SysInfo");
  const auto& schemas = doc["components"]["schemas"];
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_object()) {
      if (j.contains("$ref")) {
        std::string ref = j["$ref"];
        INFO(ref);
        CHECK(schemas.contains(ref.substr(std::string("#/components/schemas/").size())));
      }
      for (const auto& [k, v] : j.items()) walk(v);
    } else if (j.is_array()) {
      for (const auto& v : j) walk(v);
    }
  };
  walk(doc);
  CHECK(schemas["vmm.VmInfo"]["properties"]["app_url"]["anyOf"][1]["type"] == "null");
}

namespace {
// A guest agent stand-in on `port` that answers one request with `reply` (raw HTTP).
class OneShotAgent {
 public:
  OneShotAgent(uint16_t port, std::string reply) : reply_(std::move(reply)) {
    fd_ = listen_on_loopback(port);
    REQUIRE(fd_ >= 0);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)!::recv(c, buf, sizeof buf, 0);
      for (size_t done = 0; done < reply_.size();) {
        ssize_t n = ::send(c, reply_.data() + done, reply_.size() - done, MSG_NOSIGNAL);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      ::close(c);
    });
  }
  ~OneShotAgent() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

 private:
  int fd_;
  std::string reply_;
  std::thread thread_;
};

std::string http_ok(const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 200 OK\r\n" + extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
}  // namespace

TEST_CASE("a hostile guest agent answer is an error, never a crash", "[rpc][guest][safety]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::string id = create(d);
  uint16_t port = e.vmm->info(id)->agent_port;
  auto guest_info = [&](const std::string& raw) {
    OneShotAgent agent(port, raw);
    return d.call(RpcService::kGuest, "Info", RpcRequest{json{{"id", id}}.dump(), {}, false});
  };
  // 100k levels of nesting would overflow the stack of anything that walks the result.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(err(guest_info(http_ok(deep))).find("invalid JSON") != std::string::npos);
  CHECK(err(guest_info("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")) ==
        "guest agent sent a malformed chunked body for /api/Info");
  CHECK(err(guest_info("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n")) ==
        "guest agent sent a malformed chunked body for /api/Info");
  CHECK(ok(guest_info(http_ok(R"({"app_id":"x"})")))["app_id"] == "x");
  // Percent-decoding makes bytes that are not UTF-8; they must not poison later replies.
  auto q = d.call(RpcService::kVmm, "GetInfo", RpcRequest{"", "id=%ff%fe%80", true});
  CHECK(q.status == 200);
  CHECK(ok(d.call("Status", "")).is_object());
  // And the same from a request body.
  CHECK(err(d.call("Status", deep)) == "failed to decode request: JSON nested deeper than 64 levels");
}

namespace {
// A Status reply of every VM as the tree encoder gives it, without any cache.
std::string tree_status(const VmManager& vmm, bool brief) {
  VmPage page = vmm.query(VmQuery{});
  json reply{{"vms", json::array()}, {"port_mapping_enabled", vmm.config().cvm.port_mapping.enabled}, {"total", page.total}};
  for (const auto& vm : page.vms) reply["vms"].push_back(wire::encode_vm_info(vm, brief));
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Stopped VMs created a second apart (creation time orders a listing), and a brief query of all.
std::vector<std::string> create_stopped(ManagerEnv& e, RpcDispatcher& d, std::initializer_list<const char*> names) {
  std::vector<std::string> ids;
  for (const char* n : names) {
    ids.push_back(create(d, {{"name", n}, {"stopped", true}}));
    e.now_s += 1;
  }
  return ids;
}
VmQuery brief_query() {
  VmQuery q;
  q.with_files = q.with_configuration = false;
  return q;
}
}  // namespace

TEST_CASE("brief Status comes from a cache of encoded VMs, byte for byte the tree's answer", "[rpc][scale]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::vector<std::string> ids = create_stopped(e, d, {"alpha", "beta", "gamma"});
  auto tree = [&] { return tree_status(*e.vmm, true); };
  CHECK(d.call("Status", R"({"brief":true})").body == tree());
  rpc::StatusCache cache;
  VmQuery all, brief_all = brief_query();
  auto described = [&] { return e.vmm->stats().vms_described; };
  CHECK(cache.reply(*e.vmm, brief_all, e.vmm->config().cvm.port_mapping.enabled, true) == tree());
  CHECK(cache.encoded() == 3);
  std::string expected = tree();  // (which describes every VM)
  uint64_t before = described();
  CHECK(cache.reply(*e.vmm, brief_all, e.vmm->config().cvm.port_mapping.enabled, true) == expected);
  CHECK(cache.encoded() == 3);  // nothing changed: nothing encoded again
  CHECK(described() == before);  // nor described by the engine
  REQUIRE(e.vmm->start(ids[1]).ok());
  REQUIRE(wait_until([&] { return e.vmm->query(all).vms[1].status == VmStatus::kRunning; }, std::chrono::seconds(10)));
  expected = tree();
  before = described();
  CHECK(cache.reply(*e.vmm, brief_all, e.vmm->config().cvm.port_mapping.enabled, true) == expected);
  CHECK(cache.encoded() == 4);  // only the VM that changed
  CHECK(described() == before + 1);
  VmQuery one = brief_all;
  one.page = 1;
  one.page_size = 1;
  (void)cache.reply(*e.vmm, one, true, false);
  CHECK(cache.encoded() == 4);
  REQUIRE(e.vmm->stop(ids[1]).ok());
  REQUIRE(e.vmm->remove(ids[1]).ok());
  REQUIRE(wait_until([&] { return e.vmm->query(all).total == 2; }, std::chrono::seconds(10)));
  CHECK(cache.reply(*e.vmm, brief_all, e.vmm->config().cvm.port_mapping.enabled, true) == tree());
  CHECK(cache.size() == 2);  // the removed VM's entry went with it
}

TEST_CASE("a Status asked again while the listing stands is the last reply, no VM looked at", "[rpc][scale]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::vector<std::string> ids = create_stopped(e, d, {"alpha", "beta", "gamma"});
  rpc::StatusCache cache;
  VmQuery brief_all = brief_query();
  auto ask = [&](const VmQuery& q) { return cache.reply(*e.vmm, q, e.vmm->config().cvm.port_mapping.enabled, true); };
  auto tree = [&] { return tree_status(*e.vmm, true); };
  CHECK(ask(brief_all) == tree());
  CHECK(cache.replayed() == 0);
  std::string expected = tree();  // (which describes every VM)
  auto described = e.vmm->stats().vms_described;
  CHECK(ask(brief_all) == expected);
  CHECK(cache.replayed() == 1);
  CHECK(e.vmm->stats().vms_described == described);
  // Another question is not answered with this one's reply.
  VmQuery one = brief_all;
  one.page = 1;
  one.page_size = 1;
  CHECK(json::parse(cache.reply(*e.vmm, one, true, false))["vms"].size() == 1);
  CHECK(cache.replayed() == 1);
  // A running VM's uptime moves with the clock: a new second is a new reply.
  REQUIRE(e.vmm->start(ids[0]).ok());
  REQUIRE(wait_until([&] { return e.vmm->query(VmQuery{}).vms[0].status == VmStatus::kRunning; }, std::chrono::seconds(10)));
  CHECK(ask(brief_all) == tree());
  uint64_t replayed = cache.replayed();
  e.now_s += 2;
  std::string later = ask(brief_all);
  CHECK(later == tree());
  CHECK(cache.replayed() == replayed);
  CHECK(ask(brief_all) == later);
  CHECK(cache.replayed() == replayed + 1);
  // What the guest reports changes its VM alone (a new revision, nothing added or moved).
  REQUIRE(e.vmm->notify(ids[0], "boot.progress", "loading").ok());
  std::string progressed = ask(brief_all);
  CHECK(progressed == tree());
  CHECK(progressed != later);
  CHECK(cache.replayed() == replayed + 1);
  // A VM going, and a VM's change without a status change (more vCPUs), are new replies.
  REQUIRE(e.vmm->remove(ids[2]).ok());
  CHECK(ask(brief_all) == tree());
  CHECK(json::parse(ask(brief_all))["total"] == 2);
  replayed = cache.replayed();
  VmUpdate u;
  u.id = ids[1];
  u.vcpu = 2;
  REQUIRE(e.vmm->update(u).ok());
  CHECK(ask(brief_all) == tree());
  CHECK(cache.replayed() == replayed);
}

TEST_CASE("full Status opens no file per VM and encodes no VM whose only change is the clock", "[rpc][scale]") {
  ManagerEnv e;
  RpcDispatcher d(*e.vmm);
  std::vector<std::string> ids;
  for (const char* n : {"alpha", "beta"}) {
    ids.push_back(create(d, {{"name", n}, {"stopped", true}}));
    e.now_s += 1;  // creation times order the listing: beta second
  }
  auto tree = [&] { return tree_status(*e.vmm, false); };
  auto compose_of = [&](const std::string& id) {
    json reply = ok(d.call("Status", "{}"));
    for (const auto& vm : reply["vms"])
      if (vm["id"] == id) return vm["configuration"]["compose_file"].get<std::string>();
    return std::string("(missing)");
  };
  std::string compose = compose_of(ids[0]);
  CHECK(compose.find("\"name\"") != std::string::npos);
  // Read once and kept: a change made behind the engine's back is not seen, which shows that
  // the listing did not open the file again.
  write_file(std::filesystem::path(e.config.run_path) / ids[0] / "shared" / "app-compose.json", "{\"name\":\"behind\"}");
  CHECK(compose_of(ids[0]) == compose);
  // A write through the engine is seen at once.
  VmUpdate u;
  u.id = ids[0];
  u.compose_file = R"({"manifest_version":2,"name":"alpha2","runner":"docker-compose","docker_compose_file":""})";
  REQUIRE(e.vmm->update(u).ok());
  CHECK(compose_of(ids[0]) == *u.compose_file);

  rpc::StatusCache cache;
  CHECK(cache.reply(*e.vmm, VmQuery{}, true, true) == tree());
  CHECK(cache.encoded() == 2);
  REQUIRE(e.vmm->start(ids[1]).ok());
  REQUIRE(wait_until([&] { return e.vmm->query(VmQuery{}).vms[1].status == VmStatus::kRunning; }, std::chrono::seconds(10)));
  CHECK(cache.reply(*e.vmm, VmQuery{}, true, true) == tree());
  CHECK(cache.encoded() == 3);
  // Seconds pass: uptime moves, and the kept text takes the new value without a new encoding.
  std::set<std::string> uptimes;
  for (int i = 0; i < 3; ++i) {
    e.now_s += 61;
    std::string reply = cache.reply(*e.vmm, VmQuery{}, true, true);
    CHECK(reply == tree());
    uptimes.insert(json::parse(reply)["vms"][1]["uptime"].get<std::string>());
  }
  CHECK(uptimes.size() == 3);
  CHECK(cache.encoded() == 3);
  REQUIRE(e.vmm->stop(ids[1]).ok());
  e.now_s += 5;
  CHECK(cache.reply(*e.vmm, VmQuery{}, true, true) == tree());
  CHECK(cache.encoded() == 4);  // stopped: its status changed

  // A budget: what is over it is encoded for the reply and not kept, and the reply is whole.
  REQUIRE(cache.size() == 2);
  size_t budget = cache.bytes() - 1;  // room for one of the two
  rpc::StatusCache small(budget);
  for (int i = 0; i < 2; ++i) CHECK(small.reply(*e.vmm, VmQuery{}, true, true) == tree());
  CHECK(small.size() == 1);
  CHECK(small.bytes() <= budget);
  CHECK(small.encoded() == 3);  // one kept, the other encoded for each reply
}
