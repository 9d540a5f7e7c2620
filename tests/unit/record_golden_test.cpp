// SPDX-License-Identifier: Apache-2.0
// The bytes of every record, on disk and on the wire, pinned by golden files
// (tests/data/records/): a manifest, a VM configuration, an update, a VM's info (full and
// brief) and launch records, each with every field set, and each with none. Whatever builds
// these forms (field tables, codecs), the bytes must not change; the decoders read the
// golden bytes back to the same values. DSTACKVMM_UPDATE_GOLDEN=1 rewrites the files.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <dstackvmm/config.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/vm_info.hpp>

#include "../support/test_paths.hpp"
#include "rpc/services.hpp"
#include "vm/launch_record_json.hpp"
#include "wire/json_codec.hpp"

using namespace dstackvmm;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void check_golden(const std::string& name, const std::string& actual) {
  auto path = testing::data_dir() / "records" / name;
  if (const char* u = std::getenv("DSTACKVMM_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path, std::ios::binary) << actual << "\n";
    return;
  }
  std::string want = slurp(path);
  INFO("golden file " << path.string());
  REQUIRE(!want.empty());
  CHECK(actual + "\n" == want);
}

VmConfiguration full_configuration() {
  VmConfiguration c;
  c.name = "web";
  c.image = "dstack-0.5.4";
  c.compose_file = R"({"manifest_version":2,"name":"web","runner":"docker-compose"})";
  c.vcpu = 4;
  c.memory = 8192;
  c.disk_size = 40;
  c.ports = {{"tcp", "127.0.0.1", 8080, 80}, {"udp", "0.0.0.0", 5353, 53}};
  c.encrypted_env = std::string("\x01\x02\xfe\xff", 4);
  c.app_id = std::string(40, 'a');
  c.user_config = "{\"k\":\"v\"}";
  c.hugepages = true;
  c.pin_numa = true;
  c.gpus = GpuRequest{"listed", {"18:00.0", "2a:00.0"}};
  c.kms_urls = {"https://kms:8000"};
  c.gateway_urls = {"https://gw:8001", "https://gw2:8001"};
  c.stopped = true;
  c.no_tee = true;
  c.networks = {{"user", "", "", "", "", false, ""}, {"bridge", "virbr0", "", "", "", false, ""}};
  c.simulated_tee = "dstack-tdx";
  return c;
}

VmManifest full_manifest() {
  VmManifest m;
  m.id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  m.name = "web";
  m.app_id = std::string(40, 'b');
  m.vcpu = 2;
  m.memory = 2048;
  m.disk_size = 30;
  m.image = "dstack-0.5.4";
  m.port_map = {{"tcp", "127.0.0.1", 8080, 80}, {"udp", "", 5353, 53}};
  m.created_at_ms = 1700000000123;
  m.hugepages = true;
  m.pin_numa = true;
  m.gpus = GpuSelection{"all", {"18:00.0"}, {"1b:00.0"}};
  m.kms_urls = {"https://kms:8000"};
  m.gateway_urls = {"https://gw:8001"};
  m.no_tee = true;
  m.simulated_tee = "dstack-gcp-tdx";
  m.swtpm = true;
  m.networks = {{"bridge", "virbr0", "52:54:00", "10.0.2.0/24", "10.0.2.10", true, "net0"}, {"user", "", "", "", "", false, ""}};
  m.volumes = {"/data/a.img", "/data/b.img"};
  return m;
}

VmInfo full_info() {
  VmInfo i;
  i.id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  i.name = "web";
  i.status = VmStatus::kRunning;
  i.uptime = "1h 2m 3s";
  i.exited_at = "never";
  i.app_id = std::string(40, 'c');
  i.instance_id = "abcd";
  i.app_url = "https://abcd-8090.gw.example:443";
  i.configuration = full_configuration();
  i.boot_progress = "done";
  i.boot_error = "none";
  i.shutdown_progress = "";
  i.image_version = "0.5.4";
  i.events = {{"boot.progress", "done", 1700000000999}, {"vmm.notice", "a \"quoted\" note", 1700000001000}};
  i.interfaces = {{"user", "slirp", "52:54:00:12:34:56", std::nullopt, "net0"},
                  {"bridge", "tap_bridge", "52:54:00:12:34:57", "virbr0", "net1"}};
  i.created_at_ms = 1700000000000;
  i.cid = 1001;
  i.pid = 4242;
  i.agent_port = 40000;
  i.degraded = "QMP socket is gone";
  i.pending_changes = {"ports", "app compose, env or user config"};
  return i;
}

VmUpdate full_update() {
  VmUpdate u;
  u.id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  u.compose_file = "{}";
  u.encrypted_env = std::string("\x00\x10", 2);
  u.user_config = "cfg";
  u.ports = std::vector<PortMapping>{{"tcp", "", 9000, 90}};
  u.kms_urls = std::vector<std::string>{};
  u.gateway_urls = std::vector<std::string>{"https://gw"};
  u.gpus = GpuRequest{"all", {}};
  u.vcpu = 8;
  u.memory = 16384;
  u.disk_size = 100;
  u.image = "dstack-0.5.5";
  u.no_tee = false;
  u.networks = std::vector<NetworkSpec>{{"bridge", "br0", "", "", "", false, ""}};
  return u;
}

LaunchRecord full_launch() {
  LaunchRecord r;
  r.time_ms = 1700000000500;
  r.argv = {"qemu-system-x86_64", "-m", "2048M"};
  r.files = {{"kernel", "/images/x/bzImage", 123, std::string(64, 'e')}, {"hda", "/images/x/hda.img", 0, ""}};
  r.image = "dstack-0.5.4";
  r.image_version = "0.5.4";
  r.platform = "tdx";
  r.accel = "kvm";
  r.cid = 1001;
  r.ports = {{"tcp", "127.0.0.1", 8080, 80}};
  r.gpus = {"18:00.0"};
  r.compose_hash = std::string(64, 'f');
  r.app_id = std::string(40, 'a');
  r.vm_config = R"({"os_image_hash":"00"})";
  r.mr_config = R"({"version":3})";
  r.exit = LaunchExit{1700000009000, 1, std::nullopt, {"last line"}};
  r.panics = {{1700000008000, "VFS: unable to mount root fs", {"a", "b"}}};
  r.panic_count = 3;
  return r;
}

}  // namespace

TEST_CASE("vm-manifest.json: the bytes of a full and an empty manifest, read back the same", "[golden][manifest]") {
  check_golden("manifest-full.json", manifest_to_json(full_manifest()));
  check_golden("manifest-empty.json", manifest_to_json(VmManifest{}));
  auto back = manifest_from_json(manifest_to_json(full_manifest()));
  REQUIRE(back.ok());
  CHECK(*back == full_manifest());
}

TEST_CASE("the wire's VmConfiguration, UpdateVmRequest and VmInfo: bytes pinned, decoded back the same", "[golden][wire]") {
  check_golden("configuration-full.json", wire::encode_vm_configuration(full_configuration()).dump());
  check_golden("configuration-empty.json", wire::encode_vm_configuration(VmConfiguration{}).dump());
  CHECK(wire::decode_vm_configuration(wire::encode_vm_configuration(full_configuration())) == full_configuration());
  check_golden("update-full.json", wire::encode_vm_update(full_update()).dump());
  check_golden("update-empty.json", wire::encode_vm_update(VmUpdate{}).dump());
  auto u = wire::decode_vm_update(wire::encode_vm_update(full_update()));
  CHECK(u.id == full_update().id);
  CHECK(u.ports == full_update().ports);
  CHECK(u.networks == full_update().networks);
  CHECK(u.gpus == full_update().gpus);
  CHECK(u.vcpu == full_update().vcpu);
  CHECK(u.encrypted_env == full_update().encrypted_env);
  CHECK(u.kms_urls == full_update().kms_urls);
  check_golden("info-full.json", wire::encode_vm_info(full_info(), false).dump());
  check_golden("info-brief.json", wire::encode_vm_info(full_info(), true).dump());
  check_golden("info-empty.json", wire::encode_vm_info(VmInfo{}, false).dump());
}

TEST_CASE("launch records: the bytes of launch-history.json and GetInfo's launches", "[golden][launch]") {
  check_golden("launches.json", internal::launch_records_json({full_launch(), LaunchRecord{}}).dump());
}

TEST_CASE("the OpenAPI document of the prpc services", "[golden][openapi]") {
  check_golden("openapi.json", rpc::openapi_document(rpc::vmm_methods(), rpc::guest_methods(), "0.0.0-test").dump(1));
}

TEST_CASE("vmm.toml as print_config writes it: the defaults and the seed config", "[golden][config]") {
  check_golden("config-defaults.toml", print_config(Config{}));
  ParseOptions o;
  o.origin = "seed-vmm.toml";
  o.base_dir = "/etc/dstack";  // relative paths resolve against it, the same on every machine
  auto seed = parse_config(slurp(testing::data_dir() / "seed-vmm.toml"), o);
  REQUIRE(seed.ok());
  check_golden("config-seed.toml", print_config(*seed));
}

// (Round trips through the parser: config_test.)
TEST_CASE("vmm.toml as print_config writes it: every optional key set", "[golden][config]") {
  Config c;
  c.cvm.tee_simulator = TeeSimulatorConfig{};
  c.cvm.tee_simulator->platform = "dstack-tdx";
  c.cvm.tee_simulator->mock_attestation_seed = "seed";
  c.cvm.tee_simulator->collateral_base_url = "https://collateral";
  c.cvm.nvidia_attestation_proxy_url = "http://nv";
  c.cvm.qemu_single_pass_add_pages = true;
  c.cvm.qemu_pic = false;
  c.cvm.qemu_version = "9.1.0";
  c.cvm.qgs_port = 4050;
  c.cvm.product.bios_vendor = "acme";
  c.cvm.product.board_asset_tag = "tag";
  c.cvm.network_filter.parameters = {{"IP", "10.0.0.1"}, {"MAC", "52:54:00:00:00:01"}};
  c.cvm.port_mapping.range = {{"tcp", 1, 20000}, {"udp", 5000, 6000}};
  c.cvm.gpu.listing = {"10de:2335"};
  c.cvm.gpu.exclude = {"18:00.0"};
  c.cvm.gpu.include = {"19:00.0"};
  c.netd.allowed_uids = {0, 1000};
  c.auth.tokens = {"t1", "t2"};
  c.allowed_hosts = {"a.example"};
  check_golden("config-full.toml", print_config(c));
}
