// SPDX-License-Identifier: Apache-2.0
// The QEMU argv, pinned by golden files (tests/data/qemu_argv/<case>.args, one argument per
// line). tdx.args is upstream's literal example from the spec, typed in by hand; the others
// were generated with DSTACKVMM_REGENERATE=1 and reviewed. Regenerated files must be reviewed.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <dstackvmm/qemu_command.hpp>

#include "../support/test_paths.hpp"

using namespace dstackvmm;

namespace {

const char* kCompose = R"({"manifest_version":2,"name":"web","runner":"docker-compose"})";
const char* kCmdline =
    "console=ttyS0 init=/init panic=1 net.ifnames=0 biosdevname=0 mce=off oops=panic pci=noearly "
    "pci=nommconf random.trust_cpu=y random.trust_bootloader=n tsc=reliable no-kvmclock";

// Upstream's example (vmm-core.md §2.4): image dstack-0.5.4, VM vm-123, CID 1000, 2 vCPU,
// 2048 MB, tcp 127.0.0.1:8080 -> 80, GPU 18:00.0.
QemuInputs example() {
  QemuInputs in;
  in.manifest.id = "vm-123";
  in.manifest.name = "web";
  in.manifest.vcpu = 2;
  in.manifest.memory = 2048;
  in.manifest.disk_size = 20;
  in.manifest.image = "dstack-0.5.4";
  in.manifest.port_map = {{"tcp", "127.0.0.1", 8080, 80}};
  in.manifest.gpus = GpuSelection{"listed", {"18:00.0"}, {}};
  std::string img = "/home/u/.dstack-vmm/image/dstack-0.5.4";
  in.image.name = "dstack-0.5.4";
  in.image.dir = img;
  in.image.version = "0.5.4";
  in.image.metadata.shared_ro = true;
  in.image.metadata.cmdline = kCmdline;
  in.image.kernel = img + "/bzImage";
  in.image.initrd = img + "/initramfs.cpio.gz";
  in.image.bios = img + "/ovmf.fd";
  in.image.rootfs = img + "/rootfs.img.verity";
  in.workdir = "/home/u/.dstack-vmm/vm/vm-123";
  in.cid = 1000;
  in.platform = Platform::kTdx;
  in.accel = Accel::kKvm;
  in.networks = resolve_networks(NetworkingConfig{}, {});
  in.mrconfigid = mrconfigid_v1(kCompose);
  return in;
}

Config example_config() {
  Config c;
  c.cvm.qemu_path = "/usr/bin/qemu-system-x86_64";
  c.cvm.gpu.enabled = true;
  return c;
}

void check_golden(const std::string& name, const std::vector<std::string>& argv) {
  auto path = testing::source_root() / "tests/data/qemu_argv" / (name + ".args");
  std::string actual;
  for (const auto& a : argv) actual += a + "\n";
  if (const char* r = std::getenv("DSTACKVMM_REGENERATE"); r && std::string(r) == "1") {
    std::ofstream(path) << actual;
    WARN("regenerated " << path.string() << "; review the diff before committing");
    return;
  }
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream expected;
  expected << in.rdbuf();
  CHECK(actual == expected.str());
}

}  // namespace

TEST_CASE("TDX argv equals upstream's literal example", "[qemu]") {
  auto argv = build_qemu_command(example_config(), example());
  INFO((argv.ok() ? "" : argv.error().message));
  REQUIRE(argv.ok());
  check_golden("tdx", *argv);
}

TEST_CASE("SEV-SNP argv: EPYC-v4, memfd, sev-snp-guest before -machine, virtio flags", "[qemu]") {
  QemuInputs in = example();
  in.platform = Platform::kAmdSevSnp;
  in.mrconfigid.reset();
  in.manifest.memory = 4096;
  in.manifest.gpus.reset();
  in.image.bios_sev = "/home/u/.dstack-vmm/image/dstack-0.5.4/ovmf-sev.fd";
  in.sev_snp = SevSnpParams{"aG9zdC1kYXRh", 51, 1};
  auto argv = build_qemu_command(example_config(), in);
  INFO((argv.ok() ? "" : argv.error().message));
  REQUIRE(argv.ok());
  check_golden("sev_snp", *argv);
  auto& a = *argv;
  auto at = [&](const std::string& s) { return std::find(a.begin(), a.end(), s) - a.begin(); };
  CHECK(at("memory-backend-memfd,id=ram1,size=4096M,share=true,prealloc=false") < at("-machine"));
  CHECK(at("virtio-blk-pci,drive=hd1,disable-legacy=on,iommu_platform=true") < static_cast<long>(a.size()));
  in.sev_snp.reset();
  CHECK(build_qemu_command(example_config(), in).error().message ==
        "SEV-SNP needs host-data and cbitpos (no sev_snp params)");
}

TEST_CASE("plain VM under TCG with the user-net guest channel", "[qemu]") {
  QemuInputs in = example();
  in.platform = Platform::kNone;
  in.accel = Accel::kTcg;
  in.mrconfigid.reset();
  in.manifest.gpus.reset();
  in.image.bios.reset();
  in.image.rootfs.reset();
  in.channel.kind = GuestChannel::Kind::kUserNet;
  in.channel.agent_port = 40123;
  in.channel.host_api_socket = "/home/u/.dstack-vmm/vm/vm-123/hostapi.sock";
  Config c = example_config();
  c.cvm.qmp_socket = true;
  auto argv = build_qemu_command(c, in);
  INFO((argv.ok() ? "" : argv.error().message));
  REQUIRE(argv.ok());
  check_golden("plain", *argv);
}

TEST_CASE("argv details: prefixes, globals, NICs and refusals", "[qemu]") {
  Config c = example_config();
  c.cvm.user = "qemu";
  c.cvm.qemu_hotplug_off = true;
  c.cvm.qemu_pci_hole64_size = 1ull << 40;
  QemuInputs in = example();
  in.networks = resolve_networks(NetworkingConfig{}, {{"user"}, {"user"}, {"bridge", "br0"}});
  auto a = *build_qemu_command(c, in);
  CHECK(std::vector<std::string>(a.begin(), a.begin() + 4) ==
        std::vector<std::string>{"sudo", "-u", "qemu", "/usr/bin/qemu-system-x86_64"});
  auto has = [&](const std::string& s) { return std::find(a.begin(), a.end(), s) != a.end(); };
  CHECK(has("ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"));
  CHECK(has("q35-pcihost.pci-hole64-size=0x10000000000"));
  CHECK(has("user,id=net0,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=no,hostfwd=tcp:127.0.0.1:8080-:80"));
  CHECK(has("user,id=net1,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=no"));  // hostfwd on the first only
  CHECK(has("bridge,id=net2,br=br0"));
  CHECK(has("virtio-net-pci,netdev=net1,mac=c6:74:2c:65:14:b9"));

  in = example();
  in.image.rootfs = "/img/rootfs.iso";
  CHECK(build_qemu_command(c, in).error().message ==
        "Unsupported rootfs type: iso. Image versions >= 0.5.0 must use verity rootfs");
  in.image.rootfs = "/img/rootfs.ext4";
  CHECK(build_qemu_command(c, in).error().message == "Unsupported rootfs type: ext4");
  in = example();
  in.networks = resolve_networks(NetworkingConfig{}, {{"custom", "", "", "", "", false, "tap,id=eth0"}});
  CHECK(build_qemu_command(c, in).error().message ==
        "custom networking netdev must contain id=net0 for interface index 0");
  in = example();
  in.networks = resolve_networks(NetworkingConfig{}, {{"bridge", "br0"}});
  in.channel.kind = GuestChannel::Kind::kUserNet;
  CHECK(build_qemu_command(c, in).error().message == "the user-net guest channel needs a user-mode NIC; this VM has none");
  in = example();
  in.workdir = "/run/a,b";
  CHECK(build_qemu_command(c, in).error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("MAC addresses follow upstream's vectors", "[qemu]") {
  CHECK(mac_address("vm-123", "", 0) == "96:b1:d8:b9:08:e6");
  CHECK(mac_address("vm-123", "", 1) == "c6:74:2c:65:14:b9");
  CHECK(mac_address("vm-123", "52:54", 0).substr(0, 6) == "52:54:");
  CHECK(mac_address("vm-123", "01", 0).substr(0, 3) == "02:");  // multicast bit cleared, local bit set
}
