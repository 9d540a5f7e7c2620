// SPDX-License-Identifier: Apache-2.0
// Hugepages and NUMA pinning on a fake two-node host with GPUs on each node: upstream's
// layout (vmm-core 2.1 steps 6-7, 2.2 steps 20 and 22), its rounding, and clear refusals.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <dstackvmm/qemu_command.hpp>

#include "../support/fake_sysfs.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_paths.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

namespace {

// Node 0: CPUs 0-15, GPUs 18:00.0 and 2a:00.0; node 1: CPUs 16-31, GPU 9b:00.0. 8 GiB of
// 2 MiB pages free on each node.
struct TwoNodeHost {
  TempDir dir{"numa"};
  TwoNodeHost() {
    add_pci_device(dir.path(), {"0000:18:00.0", "10de", "2335", "0x030200", false, "vfio-pci", 40, 0});
    add_pci_device(dir.path(), {"0000:2a:00.0", "10de", "2335", "0x030200", false, "vfio-pci", 41, 0});
    add_pci_device(dir.path(), {"0000:9b:00.0", "10de", "2335", "0x030200", false, "vfio-pci", 42, 1});
    add_pci_device(dir.path(), {"0000:05:00.0", "10de", "22a3", "0x068000", false, "vfio-pci", 43, 0});  // NVSwitch
    add_numa_node(dir.path(), 0, "0-15", 4096, 4096);
    add_numa_node(dir.path(), 1, "16-31", 4096, 4096);
    set_host_hugepages(dir.path(), 8192, 8192);
  }
};

VmManifest gpu_vm() {
  VmManifest m;
  m.id = "vm-numa";
  m.name = "big";
  m.vcpu = 3;
  m.memory = 5 * 1024;
  m.image = "dstack-0.5.4";
  m.hugepages = true;
  m.pin_numa = true;
  m.gpus = GpuSelection{"listed", {"9b:00.0", "18:00.0", "2a:00.0"}, {"05:00.0"}};
  return m;
}

QemuInputs inputs(const VmManifest& m, const NumaPlacement& numa) {
  QemuInputs in;
  in.manifest = m;
  std::string img = "/var/lib/dstack/images/dstack-0.5.4";
  in.image.name = "dstack-0.5.4";
  in.image.dir = img;
  in.image.version = "0.5.4";
  in.image.kernel = img + "/bzImage";
  in.image.initrd = img + "/initramfs.cpio.gz";
  in.image.bios = img + "/ovmf.fd";
  in.image.rootfs = img + "/rootfs.img.verity";
  in.workdir = "/var/lib/dstack/vms/vm-numa";
  in.cid = 1000;
  in.platform = Platform::kTdx;
  in.accel = Accel::kKvm;
  in.networks = resolve_networks(NetworkingConfig{}, {});
  in.numa = numa;
  return in;
}

std::string golden(const std::string& name, const std::vector<std::string>& argv) {
  auto path = source_root() / "tests/data/qemu_argv" / (name + ".args");
  std::string actual;
  for (const auto& a : argv) actual += a + "\n";
  if (const char* r = std::getenv("DSTACKVMM_REGENERATE"); r && std::string(r) == "1") std::ofstream(path) << actual;
  std::ifstream in(path);
  std::stringstream expected;
  expected << in.rdbuf();
  return expected.str();
}

}  // namespace

TEST_CASE("GPUs on two NUMA nodes: one guest node each, GPUs on their node's expander", "[numa]") {
  TwoNodeHost host;
  VmManifest m = gpu_vm();
  auto numa = resolve_numa(host.dir.path(), m);
  REQUIRE(numa.ok());
  CHECK(numa->nodes == std::vector<NumaPlacement::Node>{{0, 2}, {1, 1}});
  CHECK(numa->pin_cpus == "16-31");  // the first GPU (9b:00.0) is on node 1
  CHECK(effective_vcpus(m, *numa) == 4);         // 3 rounded up to a multiple of 2 nodes
  CHECK(effective_memory_mb(m, *numa) == 6144);  // 5 GiB rounded up to 6, 3 per node
  CHECK(check_hugepages(host.dir.path(), m, *numa).ok());

  Config c;
  c.cvm.qemu_path = "/usr/bin/qemu-system-x86_64";
  c.cvm.gpu.enabled = true;
  c.cvm.user = "qemu";
  auto argv = build_qemu_command(c, inputs(m, *numa));
  REQUIRE(argv.ok());
  std::string actual;
  for (const auto& a : *argv) actual += a + "\n";
  // sudo outermost, then taskset; bus_nr 5 then 5 + 2 GPUs + 1 = 8; GPUs on pcie.node<N>,
  // the NVSwitch on pcie.0; -smp and -m as rounded.
  CHECK(actual == golden("tdx_hugepages_numa", *argv));
}

TEST_CASE("hugepages without GPUs: one node backed by host node 0", "[numa]") {
  TwoNodeHost host;
  VmManifest m = gpu_vm();
  m.gpus.reset();
  m.pin_numa = false;
  m.vcpu = 2;
  m.memory = 2048;
  auto numa = resolve_numa(host.dir.path(), m);
  REQUIRE(numa.ok());
  CHECK(numa->nodes == std::vector<NumaPlacement::Node>{{0, 0}});
  Config c;
  auto argv = *build_qemu_command(c, inputs(m, *numa));
  auto at = [&](const std::string& s) { return std::find(argv.begin(), argv.end(), s) != argv.end(); };
  CHECK(argv.front() == "qemu-system-x86_64");  // no taskset without pin_numa
  CHECK(at("node,nodeid=0,cpus=0-1,memdev=mem0"));
  CHECK(at("memory-backend-file,id=mem0,size=2G,mem-path=/dev/hugepages,share=on,prealloc=yes,host-nodes=0,policy=bind"));
  CHECK(at("pxb-pcie,id=pcie.node0,bus=pcie.0,addr=10,numa_node=0,bus_nr=5"));
}

TEST_CASE("hugepages and NUMA refusals say what is missing", "[numa]") {
  TwoNodeHost host;
  VmManifest m = gpu_vm();
  m.gpus->gpus = {"18:00.0;rm"};
  CHECK(resolve_numa(host.dir.path(), m).error().message == "Invalid device string: 18:00.0;rm");

  m = gpu_vm();
  m.memory = 20 * 1024;  // 10 GiB per node, 8 free on each
  auto numa = *resolve_numa(host.dir.path(), m);
  auto s = check_hugepages(host.dir.path(), m, numa);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::kFailedPrecondition);
  CHECK(s.error().message.find("NUMA node 0 has 8192 MiB of huge pages free, the VM needs 10240 MiB there") != std::string::npos);

  m.memory = 512;  // less than a GiB per node
  CHECK(check_hugepages(host.dir.path(), m, numa).error().message.find("at least 2048 MB") != std::string::npos);

  TempDir bare{"bare-host"};  // no huge pages reserved, no NUMA folders
  m = gpu_vm();
  m.gpus.reset();
  m.pin_numa = false;
  numa = *resolve_numa(bare.path(), m);
  CHECK(check_hugepages(bare.path(), m, numa).error().message.find("the host has no huge pages reserved") != std::string::npos);
  m.hugepages = false;
  m.pin_numa = true;
  auto pin = resolve_numa(bare.path(), m);
  REQUIRE_FALSE(pin.ok());
  CHECK(pin.error().message.find("pin_numa: cannot read the CPUs of NUMA node 0") != std::string::npos);

  // build_qemu_command will not guess a placement it was not given.
  m = gpu_vm();
  CHECK(build_qemu_command(Config{}, inputs(m, NumaPlacement{})).error().code == ErrorCode::kInvalidArgument);
}
