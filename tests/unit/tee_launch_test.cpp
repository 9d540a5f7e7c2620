// SPDX-License-Identifier: Apache-2.0
// What a TEE start hands its guest, through the manager's real start path (a recording
// launcher stands in for processes; stand-in QEMUs answer --version and query-sev-capabilities,
// as a TDX or SNP host's would). The files are pinned byte for byte by golden files
// (tests/data/tee/, generated with DSTACKVMM_REGENERATE=1 and checked by hand against
// tee-launch.md §3.5-3.7 and §10); the derived values (MRCONFIGID, HOST_DATA, instance ids)
// are recomputed here from the bytes the manager wrote.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <dstackvmm/mr_config.hpp>
#include <dstackvmm/vm_launcher.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "../support/manager_env.hpp"
#include "../support/test_paths.hpp"
#include "base/crypto.hpp"
#include "base/fs_util.hpp"
#include "base/text_util.hpp"
#include "qemu/sev_probe.hpp"
#include "tee/verity_volumes.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kTdxCbor = std::string("\xa3\x67version\x03\x65image\xa0\x64tdvf\xa0", 22);
const std::string kSnpCbor = std::string("\xa1\x67version\x03", 10);
const std::string kGcpCbor = std::string("\xa2\x67version\x01\x68uki_auth\x58\x20", 21) + std::string(32, 'a');
const std::string kPcr4(48, '\x04'), kPcr7(48, '\x07'), kPcr12(48, '\x0c');

std::string aws_cbor(const std::string& digest) { return std::string("\xa1\x6f" "boot_pcr_digest\x58\x20", 19) + digest; }

void make_executable(const fs::path& p, const std::string& text) {
  write_file(p, text);
  ::chmod(p.c_str(), 0755);
}

// A QEMU that says it is `version` and answers query-sev-capabilities (cbitpos 51, 1 bit).
std::string stand_in_qemu(const std::string& version) {
  return "#!/bin/sh\n"
         "case \"$1\" in\n"
         "--version) echo 'QEMU emulator version " + version + " (Debian 2:" + version + "+ds-0ubuntu1.4+tdx1.0)'; "
         "echo 'Copyright (c) 2003-2023 Fabrice Bellard and the QEMU Project developers';;\n"
         "-machine) cat >/dev/null\n"
         "  echo '{\"QMP\":{\"version\":{\"qemu\":{\"major\":10,\"minor\":0,\"micro\":2}}}}'\n"
         "  echo '{\"return\":{}}'\n"
         "  echo '{\"return\":{\"reduced-phys-bits\":1,\"cbitpos\":51,\"cert-chain\":\"ignored\"}}'\n"
         "  echo '{\"return\":{}}';;\n"
         "esac\n";
}

struct Material {
  bool tdx = true, snp = false, gcp = false, aws = false;
};

// An image like upstream's dstack-0.6.0 with the measurement material of `m`.
void make_image(const fs::path& images, const std::string& name, const Material& m, const std::string& extra_metadata = "") {
  fs::path d = images / name;
  write_file(d / "metadata.json", R"({"kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"console=ttyS0 init=/init","version":"0.6.0","shared_ro":true,"ovmf_variant":"pre202505")" +
                                      extra_metadata + "}");
  write_file(d / "bzImage", "kernel");
  write_file(d / "initramfs.cpio.gz", "initrd");
  std::string sums;
  auto add = [&](const char* file, const std::string& bytes) {
    write_file(d / file, bytes);
    sums += internal::sha256_hex(bytes) + "  " + file + "\n";
  };
  if (m.tdx) add("measurement.tdx.cbor", kTdxCbor);
  if (m.snp) add("measurement.snp.cbor", kSnpCbor);
  if (m.gcp) add("measurement.gcp.cbor", kGcpCbor);
  if (m.aws) add("measurement.aws.cbor", aws_cbor(internal::sha256(kPcr4 + kPcr7 + kPcr12)));
  if (m.gcp) write_file(d / "measurement.gcp.eventlog.bin", "\x01\x02\x03");
  if (m.aws)
    write_file(d / "measurement.aws.replay.json",
               R"({"version":1,"events":[{"pcr":4,"event_type":"EV_EFI_ACTION","digest":")" + std::string(96, 'A') + R"("}],"pcr4":")" +
                   to_hex(kPcr4) + R"(","pcr7":")" + to_hex(kPcr7) + R"(","pcr12":")" + to_hex(kPcr12) + "\"}");
  write_file(d / "sha256sum.txt", sums);
  write_file(d / "digest.txt", internal::sha256_hex(sums) + "\n");
}

// A manager on a TEE host: the stand-in QEMU, images with material, the vsock channel
// (upstream's host API URL).
struct TeeEnv : ManagerEnv {
  explicit TeeEnv(Platform platform, std::function<void(Config&)> tweak = {}, const std::string& qemu_version = "8.2.2") {
    make_executable(dir.path() / "qemu", stand_in_qemu(qemu_version));
    make_image(dir.path() / "images", "dstack-0.6.0", Material{true, true, true, true});
    config.cvm.qemu_path = (dir.path() / "qemu").string();
    config.cvm.platform = platform;
    config.cvm.guest_channel = GuestChannelMode::kVsock;
    config.cvm.max_allocable_memory_in_mb = 8192;
    if (tweak) tweak(config);
    reopen();
  }
  VmConfiguration vm(const std::string& compose, uint32_t vcpu = 2, uint32_t memory = 2048) const {
    VmConfiguration c;
    c.name = "tee";
    c.image = "dstack-0.6.0";
    c.compose_file = compose;
    c.vcpu = vcpu;
    c.memory = memory;
    c.disk_size = 1;
    c.stopped = true;
    return c;
  }
  fs::path wd(const std::string& id) const { return dir.path() / "vms" / id; }
  std::string file(const std::string& id, const std::string& rel) const { return internal::read_file(wd(id) / rel).value_or("<missing>"); }
  // Creates stopped, seeds .instance_info when asked, then starts: what the guest gets.
  std::string start(const VmConfiguration& c, const std::optional<std::string>& instance_info = std::nullopt) {
    auto id = vmm->create(c);
    REQUIRE(id.ok());
    if (instance_info) write_file(wd(*id) / "shared/.instance_info", *instance_info);
    auto s = vmm->start(*id);
    INFO((s.ok() ? "" : s.error().message));
    REQUIRE(s.ok());
    return *id;
  }
  std::vector<std::string> argv() { return launcher->started().back().argv; }
};

std::string compose(const std::string& extra = "") {
  return R"({"manifest_version":2,"name":"app","runner":"docker-compose","kms_enabled":true)" + extra + "}";
}
const std::string kSeedInfo = R"({"instance_id_seed":"0707070707070707070707070707070707070707","app_id":")";

// tests/data/tee/<name>, byte for byte (DSTACKVMM_REGENERATE=1 rewrites it: review the diff).
// What differs per run (paths, the VM's id and the MAC made of it) is replaced first.
void check_golden(const std::string& name, std::string actual, const std::vector<std::pair<std::string, std::string>>& vary = {}) {
  for (const auto& [from, to] : vary)
    for (size_t at; (at = actual.find(from)) != std::string::npos;) actual.replace(at, from.size(), to);
  auto path = data_dir() / "tee" / name;
  if (const char* r = std::getenv("DSTACKVMM_REGENERATE"); r && std::string(r) == "1") {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    WARN("regenerated " << path.string() << "; review the diff before committing");
    return;
  }
  auto expected = internal::read_file(path);
  REQUIRE(expected.ok());
  CHECK(actual == *expected);
}

std::string arg_after(const std::vector<std::string>& argv, const std::string& flag, const std::string& prefix = "") {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag && argv[i + 1].rfind(prefix, 0) == 0) return argv[i + 1];
  return "";
}

}  // namespace

TEST_CASE("TDX legacy: vm_config as upstream writes it, MRCONFIGID V1 from the compose", "[tee][tdx]") {
  TeeEnv e(Platform::kTdx);
  auto c = e.vm(compose(), 2, 1024);
  auto id = e.start(c);
  std::string sys = e.file(id, "shared/.sys-config.json");
  check_golden("tdx-legacy.sys-config.json", sys);
  json vm = json::parse(json::parse(sys)["vm_config"].get<std::string>());
  CHECK_FALSE(vm.contains("tdx_attestation_variant"));  // legacy is never written
  CHECK(vm.contains("tdx_measurement"));                // but the material goes along whenever there is some
  CHECK(vm["qemu_version"] == "8.2.2");                 // asked of the configured binary
  CHECK(vm["memory_size"] == 1024ull << 20);
  std::string object = arg_after(e.argv(), "-object", R"({"qom-type":"tdx-guest")");
  CHECK(object.find("\"mrconfigid\":\"" + mrconfigid_v1(c.compose_file) + "\"") != std::string::npos);
  CHECK(e.file(id, "shared/.instance_info") == R"({"app_id":")" + internal::sha256_hex(c.compose_file).substr(0, 40) + "\"}");  // V1: untouched
  CHECK_FALSE(fs::exists(e.wd(id) / "shared/.tee-simulator.json"));
}

TEST_CASE("TDX lite: upstream's example shape key for key (2 vCPU, 2048 MB, QEMU 8.2.2, pre202505)", "[tee][tdx]") {
  TeeEnv e(Platform::kTdx);
  auto id = e.start(e.vm(compose()));
  std::string sys = e.file(id, "shared/.sys-config.json");
  check_golden("tdx-lite.sys-config.json", sys);
  // tee-launch.md §3.6, filled in with this image's material, computed here from the files.
  fs::path img = e.dir.path() / "images/dstack-0.6.0";
  std::string sums = *internal::read_file(img / "sha256sum.txt");
  std::string expected_vm =
      R"({"os_image_hash":")" + internal::sha256_hex(sums) +
      R"(","cpu_count":2,"memory_size":2147483648,"qemu_version":"8.2.2","pci_hole64_size":0,"hugepages":false,"num_gpus":0,"num_nvswitches":0,"hotplug_off":false,"image":"dstack-0.6.0","host_share_mode":"9p","ovmf_variant":"pre202505","tdx_attestation_variant":"lite","tdx_measurement":{"checksum_file":")" +
      internal::base64(sums) + R"(","measurement":")" + internal::base64(kTdxCbor) + R"("},"spec_version":1})";
  json s = json::parse(sys);
  CHECK(s["vm_config"].get<std::string>() == expected_vm);
  CHECK(sys == R"({"kms_urls":["http://127.0.0.1:8081"],"gateway_urls":["http://127.0.0.1:8082"],"pccs_url":"","collateral_urls":{"pccs":""},"nvidia_attestation_proxy_url":null,"docker_registry":"","host_api_url":"vsock://2:10000/api","vm_config":)" +
                   json(expected_vm).dump() + "}");
  // Lite without the material is refused with upstream's words (auto would fall back to legacy).
  TeeEnv lite(Platform::kTdx, [](Config& cfg) { cfg.cvm.tdx_attestation_variant = "lite"; });
  make_image(lite.dir.path() / "images", "bare", Material{false});
  auto bare = lite.vm(compose());
  bare.image = "bare";
  auto r = lite.vmm->create(bare);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "tdx lite attestation requested but image is missing measurement.tdx.cbor/sha256sum.txt measurement material");
  // The compose's requirement overrides the node: measured ACPI tables are legacy.
  auto legacy = e.start(e.vm(compose(R"(,"requirements":{"tdx_measure_acpi_tables":true})")));
  CHECK_FALSE(json::parse(json::parse(e.file(legacy, "shared/.sys-config.json"))["vm_config"].get<std::string>()).contains("tdx_attestation_variant"));
}

TEST_CASE("TDX with a key provider id: MrConfigV3 in .sys-config.json, MRCONFIGID from its bytes, .instance_info rewritten", "[tee][tdx]") {
  TeeEnv e(Platform::kTdx);
  auto c = e.vm(compose(R"(,"key_provider_id":"c0ffee")"), 2, 1024);
  std::string app = internal::sha256_hex(c.compose_file).substr(0, 40);
  auto id = e.start(c, kSeedInfo + app + "\"}");
  std::string sys = e.file(id, "shared/.sys-config.json");
  check_golden("tdx-v3.sys-config.json", sys);
  std::string doc = json::parse(sys)["mr_config"];
  auto v3 = parse_mr_config(doc);
  REQUIRE(v3.ok());
  std::string seed(20, '\x07');
  std::string instance = internal::sha256(seed + *from_hex(app)).substr(0, 20);
  CHECK(v3->instance_id == instance);
  CHECK(v3->key_provider == "kms");
  CHECK(v3->key_provider_id == std::string("\xc0\xff\xee"));
  CHECK(v3->compose_hash == internal::sha256(c.compose_file));
  CHECK(e.file(id, "shared/.instance_info") ==
        R"({"instance_id_seed":"0707070707070707070707070707070707070707","instance_id":")" + to_hex(instance) + R"(","app_id":")" + app + "\"}");
  CHECK(arg_after(e.argv(), "-object", R"({"qom-type":"tdx-guest")").find("\"mrconfigid\":\"" + tdx_mr_config_id_v3(doc) + "\"") !=
        std::string::npos);
  CHECK_FALSE(json::parse(json::parse(sys)["vm_config"].get<std::string>()).contains("mr_config"));  // on TDX: only beside vm_config
  // The next start keeps the kms VM's identity: the same document, byte for byte.
  REQUIRE(e.vmm->stop(id).ok());
  REQUIRE(e.vmm->start(id).ok());
  CHECK(e.file(id, "shared/.sys-config.json") == sys);
  // With use_mrconfigid off, a key provider id cannot be bound: refused at create.
  TeeEnv off(Platform::kTdx, [](Config& cfg) { cfg.cvm.use_mrconfigid = false; });
  auto r = off.vmm->create(off.vm(compose(R"(,"key_provider_id":"c0ffee")")));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("key provider ID requires MrConfigV3, but use_mrconfigid is disabled", 0) == 0);
}

TEST_CASE("SEV-SNP: vm_config with mr_config and the SNP measurement, HOST_DATA and cbitpos in the argv", "[tee][snp]") {
  TeeEnv e(Platform::kAmdSevSnp, {}, "10.0.2");
  auto c = e.vm(compose(R"(,"key_provider_id":"c0ffee")"), 2, 4096);
  std::string app = internal::sha256_hex(c.compose_file).substr(0, 40);
  auto id = e.start(c, kSeedInfo + app + "\"}");
  std::string sys = e.file(id, "shared/.sys-config.json");
  check_golden("snp.sys-config.json", sys);
  json s = json::parse(sys);
  json vm = json::parse(s["vm_config"].get<std::string>());
  CHECK(vm["mr_config"] == s["mr_config"]);  // the same string in both places
  CHECK(vm["qemu_version"] == "10.0.2");
  CHECK_FALSE(vm.contains("tdx_measurement"));
  json snp = json::parse(vm["sev_snp_measurement"].get<std::string>());
  CHECK(snp["vcpus"] == 2);
  CHECK(snp["vcpu_type"] == "EPYC-v4");
  CHECK(snp["guest_features"] == 1);
  auto argv = e.argv();
  CHECK(arg_after(argv, "-smp") == "2");
  CHECK(arg_after(argv, "-cpu") == "EPYC-v4");
  CHECK(arg_after(argv, "-object", "memory-backend-memfd") == "memory-backend-memfd,id=ram1,size=4096M,share=true,prealloc=false");
  CHECK(arg_after(argv, "-object", "sev-snp-guest") ==
        "sev-snp-guest,id=sev0,policy=0x30000,sev-device=/dev/sev,kernel-hashes=on,host-data=" + snp_host_data(s["mr_config"].get<std::string>()) +
            ",cbitpos=51,reduced-phys-bits=1");
  CHECK(arg_after(argv, "-machine") == "q35,kernel-irqchip=split,confidential-guest-support=sev0,memory-backend=ram1,hpet=off");
  // SNP binds V3 whatever use_mrconfigid says, and a QEMU that cannot answer stops the start, named.
  TeeEnv broken(Platform::kAmdSevSnp, [](Config& cfg) { cfg.cvm.use_mrconfigid = false; });
  make_executable(broken.dir.path() / "qemu", "#!/bin/sh\n[ \"$1\" = --version ] && echo 'QEMU emulator version 9.2.0' && exit 0\n"
                                              "echo 'kvm: no SEV here' >&2; exit 1\n");
  auto bid = broken.vmm->create(broken.vm(compose(), 2, 1024));
  REQUIRE(bid.ok());
  auto started = broken.vmm->start(*bid);
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().message ==
        "failed to detect AMD SEV-SNP cbitpos/reduced-phys-bits from QEMU " + (broken.dir.path() / "qemu").string() +
            ": QEMU query-sev-capabilities exited with exit status 1: kvm: no SEV here");
  CHECK(json::parse(broken.file(*bid, "shared/.instance_info")).contains("app_id"));
}

TEST_CASE("the SEV capabilities probe keeps its deadline with a QEMU that never answers", "[tee][snp]") {
  TempDir dir("snp-hang");
  make_executable(dir.path() / "qemu", "#!/bin/sh\nexec sleep 60\n");
  auto start = std::chrono::steady_clock::now();
  auto r = internal::probe_sev_capabilities((dir.path() / "qemu").string(), 300ms);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("did not finish within 0 s and was killed") != std::string::npos);
}

TEST_CASE("no TEE: the same vm_config without TEE keys, and no MrConfig", "[tee]") {
  TeeEnv e(Platform::kNone);
  auto id = e.start(e.vm(compose(R"(,"key_provider_id":"c0ffee")"), 1, 1024));
  std::string sys = e.file(id, "shared/.sys-config.json");
  check_golden("notee.sys-config.json", sys);
  CHECK_FALSE(json::parse(sys).contains("mr_config"));
  CHECK(arg_after(e.argv(), "-machine") == "q35,kernel-irqchip=split,hpet=off");
}

TEST_CASE("simulated TEEs: .tee-simulator.json beside .sys-config.json, measurement and replay material", "[tee][sim]") {
  TeeEnv e(Platform::kTdx, [](Config& cfg) {
    cfg.cvm.tee_simulator = TeeSimulatorConfig{"dstack-tdx", std::string(64, 'c'), std::string("http://10.0.2.2:18088")};
  });
  auto gcp = e.vm(compose(), 2, 2048);
  gcp.simulated_tee = "dstack-gcp-tdx";
  auto id = e.start(gcp);
  check_golden("sim-gcp.sys-config.json", e.file(id, "shared/.sys-config.json"));
  check_golden("sim-gcp.tee-simulator.json", e.file(id, "shared/.tee-simulator.json"));
  json sim = json::parse(e.file(id, "shared/.tee-simulator.json"));
  CHECK(sim["vm_config"] == json::parse(e.file(id, "shared/.sys-config.json"))["vm_config"]);
  CHECK(sim["gcp_tpm_replay"]["event_log"] == "AQID");
  CHECK(arg_after(e.argv(), "-machine") == "q35,kernel-irqchip=split,hpet=off");  // simulated: no TEE for QEMU

  auto aws = e.vm(compose(), 2, 2048);
  aws.simulated_tee = "dstack-aws-nitro-tpm";
  id = e.start(aws);
  check_golden("sim-aws.tee-simulator.json", e.file(id, "shared/.tee-simulator.json"));
  CHECK(json::parse(e.file(id, "shared/.tee-simulator.json"))["aws_pcr_replay"]["events"][0]["digest"] == std::string(96, 'a'));

  auto snp = e.vm(compose(), 2, 2048);
  snp.simulated_tee = "dstack-amd-sev-snp";
  id = e.start(snp);
  json sys = json::parse(e.file(id, "shared/.sys-config.json"));
  REQUIRE(sys.contains("mr_config"));  // V3 for the simulated SNP guest...
  CHECK(json::parse(e.file(id, "shared/.tee-simulator.json"))["mr_config"] == sys["mr_config"]);
  CHECK_FALSE(json::parse(sys["vm_config"].get<std::string>()).contains("mr_config"));  // ...not in vm_config, not in QEMU
  CHECK(arg_after(e.argv(), "-object").empty());

  // A VM that is no longer simulated loses the file; a node without the table refuses them.
  auto plain = e.start(e.vm(compose(), 1, 1024));
  write_file(e.wd(plain) / "shared/.tee-simulator.json", "{}");
  REQUIRE(e.vmm->stop(plain).ok());
  REQUIRE(e.vmm->start(plain).ok());
  CHECK_FALSE(fs::exists(e.wd(plain) / "shared/.tee-simulator.json"));
  TeeEnv bare(Platform::kTdx);
  auto refused = bare.vmm->create(gcp);
  CHECK(refused.error().message.rfind("tee simulator credentials are not configured on this VMM", 0) == 0);
  gcp.simulated_tee = "not-a-platform";
  CHECK(e.vmm->create(gcp).error().message.rfind("unsupported TEE variant: not-a-platform", 0) == 0);
  // Material the simulation needs, refused with upstream's words.
  make_image(e.dir.path() / "images", "tdx-only", Material{true});
  aws.image = "tdx-only";
  CHECK(e.vmm->create(aws).error().message == "AWS NitroTPM image is missing measurement.aws.cbor measurement material");
  make_image(e.dir.path() / "images", "aws-bad", Material{false, false, false, true});
  write_file(e.dir.path() / "images/aws-bad/measurement.aws.replay.json",
             R"({"version":1,"events":[],"pcr4":")" + std::string(96, '0') + R"(","pcr7":")" + std::string(96, '0') + R"(","pcr12":")" +
                 std::string(96, '0') + "\"}");
  aws.image = "aws-bad";
  CHECK(e.vmm->create(aws).error().message == "measurement.aws.replay.json does not match measurement.aws.cbor");
}

TEST_CASE("key_provider tpm: a software TPM beside QEMU through the launcher, or a refusal naming what to install", "[tee][swtpm]") {
  TeeEnv e(Platform::kNone);
  auto tpm = e.vm(R"({"manifest_version":2,"name":"app","runner":"docker-compose","key_provider":"tpm"})", 1, 1024);
  {
    auto o = e.options();
    o.swtpm = (e.dir.path() / "no-swtpm").string();
    e.vmm.reset();
    e.vmm = *VmManager::open(o);
    auto r = e.vmm->create(tpm);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("tpm key provider requested but swtpm is not installed", 0) == 0);
    CHECK(r.error().message.find("apt-get install swtpm") != std::string::npos);
  }
  make_executable(e.dir.path() / "swtpm", "#!/bin/sh\nexit 0\n");
  make_executable(e.dir.path() / "launcher", "#!/bin/sh\nexit 0\n");
  auto o = e.options();
  o.swtpm = (e.dir.path() / "swtpm").string();
  o.vm_launcher_exe = e.dir.path() / "launcher";
  e.vmm.reset();
  e.vmm = *VmManager::open(o);
  auto id = e.start(tpm);
  auto manifest = json::parse(e.file(id, "vm-manifest.json"));
  CHECK(manifest["swtpm"] == true);
  CHECK(json::parse(json::parse(e.file(id, "shared/.sys-config.json"))["vm_config"].get<std::string>())["swtpm"] == true);
  // The launcher runs, with upstream's argv; the spec holds QEMU's argv and swtpm's.
  auto started = e.launcher->started().back().argv;
  CHECK(started == std::vector<std::string>{(e.dir.path() / "launcher").string(), "vm-launcher", "--spec", (e.wd(id) / "launch.json").string()});
  auto spec = parse_launch_spec(e.file(id, "launch.json"));
  REQUIRE(spec.ok());
  CHECK(arg_after(spec->qemu, "-device", "tpm-tis") == "tpm-tis,tpmdev=tpm0");
  CHECK(arg_after(spec->qemu, "-tpmdev") == "emulator,id=tpm0,chardev=chrtpm");
  CHECK(arg_after(spec->qemu, "-chardev", "socket,id=chrtpm") == "socket,id=chrtpm,path=" + (e.wd(id) / "swtpm/swtpm.sock").string());
  std::string text = e.file(id, "launch.json");
  std::string ids = std::to_string(::geteuid()) + ",gid=" + std::to_string(::getegid());
  text.replace(text.find(ids), ids.size(), "<uid>,gid=<gid>");
  check_golden("swtpm.launch.json", text,
               {{e.wd(id).string(), "<wd>"}, {e.dir.path().string(), "<root>"}, {mac_address(id, "", 0), "<mac>"}});
  CHECK(fs::is_directory(e.wd(id) / "swtpm"));  // the TPM's state, kept across boots
  // The compose decides at every update: a kms compose turns the TPM off (its state stays).
  VmUpdate u;
  u.id = id;
  u.compose_file = compose();
  REQUIRE(e.vmm->stop(id).ok());
  REQUIRE(e.vmm->update(u).ok());
  CHECK(json::parse(e.file(id, "vm-manifest.json"))["swtpm"] == false);
  REQUIRE(e.vmm->start(id).ok());
  CHECK(e.launcher->started().back().argv[0] == (e.dir.path() / "qemu").string());
  CHECK(fs::is_directory(e.wd(id) / "swtpm"));
  // A simulated platform with its own TPM needs none.
  TeeEnv sim(Platform::kTdx, [](Config& cfg) { cfg.cvm.tee_simulator = TeeSimulatorConfig{}; });
  tpm.simulated_tee = "dstack-gcp-tdx";
  auto sid = sim.vmm->create(tpm);
  REQUIRE(sid.ok());
  CHECK(json::parse(sim.file(*sid, "vm-manifest.json"))["swtpm"] == false);
}

TEST_CASE("verity volumes: resolved under volumes_dir at create, attached read-only, counted in vm_config", "[tee][volumes]") {
  TempDir outside("outside");
  TeeEnv e(Platform::kNone);
  fs::path vols = e.dir.path() / "vols";
  fs::create_directories(vols);
  e.config.cvm.volumes_dir = vols.string();
  e.reopen();
  write_file(vols / "a.img", "A");
  write_file(vols / "b.img", "B");
  write_file(outside.path() / "secret.img", "S");
  fs::create_symlink(outside.path() / "secret.img", vols / "link.img");
  write_file(vols / "bad,readonly=off", "X");
  auto volume = [](const std::string& source, char root, const std::string& target) {
    return R"({"source":")" + source + R"(","verity_root":")" + std::string(64, root) + R"(","target":")" + target + "\"}";
  };
  auto with = [&](const std::string& list) { return e.vm(compose(",\"verity_volumes\":[" + list + "]"), 1, 1024); };
  auto id = e.start(with(volume("a.img", '1', "/run/a") + "," + volume("missing.img", '1', "/run/again") + "," + volume("b.img", '2', "/run/b")));
  auto manifest = json::parse(e.file(id, "vm-manifest.json"));
  fs::path real = fs::canonical(vols);
  CHECK(manifest["volumes"] == json::parse(R"([{"source":")" + (real / "a.img").string() + R"("},{"source":")" + (real / "b.img").string() + "\"}]"));
  auto argv = e.argv();
  CHECK(arg_after(argv, "-drive", "file=" + (real / "a.img").string()) == "file=" + (real / "a.img").string() + ",if=none,id=vol0,format=raw,readonly=on");
  CHECK(arg_after(argv, "-device", "virtio-blk-pci,drive=vol1") == "virtio-blk-pci,drive=vol1");
  auto vol0 = std::find(argv.begin(), argv.end(), "file=" + (real / "a.img").string() + ",if=none,id=vol0,format=raw,readonly=on");
  CHECK(vol0 < std::find(argv.begin(), argv.end(), "-netdev"));  // after the data disk, before the NICs (measured order)
  CHECK(json::parse(json::parse(e.file(id, "shared/.sys-config.json"))["vm_config"].get<std::string>())["num_verity_volumes"] == 2);
  // What the compose may not name.
  CHECK(e.vmm->create(with(volume("../a.img", '1', "/x"))).error().message == "invalid volume source '../a.img': must be a bare file name");
  CHECK(e.vmm->create(with(volume("link.img", '1', "/x"))).error().message == "volume 'link.img' escapes volumes_dir");
  CHECK(e.vmm->create(with(volume("bad,readonly=off", '1', "/x"))).error().message ==
        "volume 'bad,readonly=off' resolves to a path with ',' or '='");
  CHECK(e.vmm->create(with(volume("a.img", '1', "/x") + "," + volume("b.img", '2', "/x"))).error().message ==
        "Invalid compose file: duplicate verity volume target /x");
  CHECK(e.vmm->create(with(volume("a.img", '1', "relative"))).error().message ==
        "Invalid compose file: invalid verity_volumes in app-compose: entry 0: volume target must be an absolute path, got 'relative'");
  CHECK(e.vmm->create(with(R"({"source":"a.img","verity_root":"11","target":"/x"})")).error().message.find("invalid array length 1") !=
        std::string::npos);
  TeeEnv none(Platform::kNone);
  CHECK(none.vmm->create(none.vm(compose(",\"verity_volumes\":[" + volume("a.img", '1', "/x") + "]"))).error().message.rfind(
            "volumes requested but cvm.volumes_dir is not configured", 0) == 0);
  CHECK(none.vmm->create(none.vm(compose(",\"verity_volumes\":[]"))).ok());
}

TEST_CASE("an upstream VMM's run_path is taken over: supervisor CIDs kept, its launch spec left alone, our old records moved", "[tee][takeover]") {
  TeeEnv e(Platform::kNone);
  // A VM folder as upstream lays it out: no vm-runtime.json, its supervisor entry running
  // QEMU on CID 1234 (upstream's ProcessConfig note), and a launch.json that is its spec.
  std::string id = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
  fs::path wd = e.wd(id);
  write_file(wd / "vm-manifest.json",
             R"({"id":")" + id + R"(","name":"up","app_id":")" + std::string(40, 'a') +
                 R"(","vcpu":1,"memory":1024,"disk_size":1,"image":"dstack-0.6.0","port_map":[],"created_at_ms":1,"hugepages":false,"pin_numa":false,"kms_urls":[],"gateway_urls":[],"no_tee":false,"swtpm":true,"volumes":[]})");
  write_file(wd / "vm-state.json", R"({"started":true})");
  write_file(wd / "shared/app-compose.json", compose(R"(,"key_provider":"tpm")"));
  write_file(wd / "shared/.instance_info", R"({"app_id":")" + std::string(40, 'a') + "\"}");
  LaunchSpec upstream_spec;
  upstream_spec.qemu = {"qemu-system-x86_64"};
  upstream_spec.swtpm = {"/usr/bin/swtpm", "socket"};
  upstream_spec.swtpm_socket = wd / "swtpm/swtpm.sock";
  write_file(wd / "launch.json", launch_spec_json(upstream_spec));
  ProcessInfo p;
  p.spec.id = id;
  p.spec.name = "up";
  p.spec.argv = {"/usr/bin/dstack-vmm", "vm-launcher", "--spec", (wd / "launch.json").string()};
  p.spec.cid = 1234;
  p.spec.note = R"({"kind":"cvm","live_for":null,"serial_logappend":true})";
  p.status = ProcessStatus::kRunning;
  p.started = true;
  p.pid = 777;
  e.launcher->seed(p);
  // And one of our earlier VMs whose records were still in launch.json.
  auto ours = e.start(e.vm(compose(), 1, 1024));
  REQUIRE(e.vmm->stop(ours).ok());
  e.vmm.reset();  // its record writes (start, exit) done
  fs::rename(e.wd(ours) / "launch-history.json", e.wd(ours) / "launch.json");
  e.reopen();
  auto info = e.vmm->info(id);
  REQUIRE(info.ok());
  CHECK(info->cid == 1234);
  CHECK(info->status == VmStatus::kRunning);  // re-adopted, not started again
  CHECK(e.launcher->started().size() == 1);   // (only ours, before the reopen)
  CHECK(json::parse(e.file(id, "vm-runtime.json"))["cid"] == 1234);
  CHECK(*parse_launch_spec(e.file(id, "launch.json")) == upstream_spec);
  CHECK_FALSE(fs::exists(e.wd(id) / "launch-history.json"));
  CHECK_FALSE(fs::exists(e.wd(ours) / "launch.json"));
  auto records = e.vmm->launches(ours);
  REQUIRE(records.ok());
  CHECK(records->size() == 1);
  // A new VM never gets the CID the adopted one holds.
  auto other = e.vmm->create(e.vm(compose(), 1, 1024));
  REQUIRE(other.ok());
  CHECK(e.vmm->info(*other)->cid != 1234);
}
