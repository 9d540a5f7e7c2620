// SPDX-License-Identifier: Apache-2.0
// The KVM probe's child, its deadline and its verdicts. This host has no KVM whose guests
// hang, so a child body that never returns stands in for one: what is under test is that the
// probe gives up at its deadline, says so, and leaves no process behind.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "../support/temp_dir.hpp"
#include "host/kvm_probe.hpp"

using namespace dstackvmm::internal;
using namespace std::chrono_literals;

namespace {
int hangs(const void*) {
  for (;;) ::pause();
}
int halts(const void*) { return 0; }
int fails_to_run(const void*) { return 16; }

HostRoots fake_dev(const dstackvmm::testing::TempDir& dir) {
  std::filesystem::create_directories(dir.path() / "dev");
  std::ofstream(dir.path() / "dev/kvm") << "";  // opens read-write, as a KVM device would
  HostRoots roots;
  roots.dev = dir.path() / "dev";
  return roots;
}
bool no_child_left() { return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD; }
}  // namespace

TEST_CASE("a KVM whose test guest hangs is told apart by the deadline, and the probe is reaped", "[host][kvm]") {
  dstackvmm::testing::TempDir dir("kvm");
  auto roots = fake_dev(dir);
  auto start = std::chrono::steady_clock::now();
  KvmProbe r = probe_kvm(roots, 300ms, hangs);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.device_opens);
  CHECK_FALSE(r.works);
  CHECK(r.detail.find("opens, but a one-instruction test guest did not finish within 300 ms") != std::string::npos);
  CHECK(took >= 300ms);
  CHECK(took < 10s);  // killed at the deadline, not waited for
  CHECK(no_child_left());
}

TEST_CASE("the probe's verdicts: a guest that halts, a step that fails, no device", "[host][kvm]") {
  dstackvmm::testing::TempDir dir("kvm");
  auto roots = fake_dev(dir);
  KvmProbe ok = probe_kvm(roots, 5s, halts);
  CHECK(ok.works);
  CHECK(ok.detail.find("a test guest ran and halted in") == 0);
  KvmProbe run = probe_kvm(roots, 5s, fails_to_run);
  CHECK_FALSE(run.works);
  CHECK(run.detail.find("opens, but the probe failed at running the vCPU") != std::string::npos);
  // The real body on a file that is no KVM: past open, stopped at the first ioctl.
  KvmProbe real = probe_kvm(roots, 5s);
  CHECK(real.detail.find("opens, but the probe failed at the API version") != std::string::npos);
  roots.dev = dir.path() / "none";
  KvmProbe absent = probe_kvm(roots, 5s);
  CHECK_FALSE(absent.device_opens);
  CHECK(absent.detail.find("cannot be opened: No such file or directory") != std::string::npos);
  CHECK(no_child_left());
}
