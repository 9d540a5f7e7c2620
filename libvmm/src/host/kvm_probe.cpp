// SPDX-License-Identifier: Apache-2.0
#include "host/kvm_probe.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "process/spawn.hpp"

namespace dstackvmm::internal {

namespace {

// The child's side of probe_kvm: system calls only. Exit codes name the step that failed.
struct KvmProbeArgs {
  char path[4096];  // first: the body is given the path
};
int run_kvm_probe(const void* arg) {
  const auto* a = static_cast<const KvmProbeArgs*>(arg);
  int kvm = ::open(a->path, O_RDWR | O_CLOEXEC);
  if (kvm < 0) return 10;
  if (::ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) return 11;
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return 12;
  void* mem = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 13;
  static_cast<unsigned char*>(mem)[0] = 0xf4;  // hlt
  kvm_userspace_memory_region region{};
  region.guest_phys_addr = 0x1000;
  region.memory_size = 0x1000;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return 13;
  int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return 14;
  int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return 14;
  void* run_map = ::mmap(nullptr, static_cast<size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run_map == MAP_FAILED) return 14;
  kvm_sregs sregs{};
  if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return 15;
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return 15;
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return 15;
  if (::ioctl(vcpu, KVM_RUN, 0) < 0) return 16;
  return static_cast<kvm_run*>(run_map)->exit_reason == KVM_EXIT_HLT ? 0 : 17;
}
}  // namespace

KvmProbe probe_kvm(const HostRoots& roots, std::chrono::milliseconds timeout, std::stop_token stop) {
  return probe_kvm(roots, timeout, run_kvm_probe, stop);
}

KvmProbe probe_kvm(const HostRoots& roots, std::chrono::milliseconds timeout, KvmProbeBody body, std::stop_token stop) {
  KvmProbe r;
  std::string path = (roots.dev / "kvm").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    r.detail = path + " cannot be opened: " + std::strerror(errno);
    return r;
  }
  ::close(fd);
  r.device_opens = true;
  KvmProbeArgs args{};
  if (path.size() >= sizeof args.path) {
    r.detail = "the device path is too long";
    return r;
  }
  std::memcpy(args.path, path.c_str(), path.size() + 1);
  auto start = std::chrono::steady_clock::now();
  auto child = fork_probe(body, &args);
  if (!child.ok()) {
    r.detail = "cannot start the probe: " + child.error().message;
    return r;
  }
  auto status = wait_child(*child, timeout, stop);
  if (!status) {
    ::kill(child->pid, SIGKILL);
    (void)wait_child(*child, std::chrono::seconds(5));
  }
  if (child->pidfd >= 0) ::close(child->pidfd);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  if (!status) {
    r.detail = path + " opens, but a one-instruction test guest did not finish within " + std::to_string(timeout.count()) +
               " ms (nested virtualisation that does not run guests?)";
    return r;
  }
  int code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 100 + WTERMSIG(*status);
  static const char* const kSteps[] = {"open", "the API version", "creating a VM", "guest memory", "creating a vCPU",
                                       "setting registers", "running the vCPU", "the guest's exit"};
  if (code == 0) {
    r.works = true;
    r.detail = "a test guest ran and halted in " + std::to_string(ms) + " ms";
  } else if (code >= 10 && code <= 17) {
    r.detail = path + " opens, but the probe failed at " + kSteps[code - 10];
  } else {
    r.detail = path + " opens, but the probe ended with status " + std::to_string(code);
  }
  return r;
}

}  // namespace dstackvmm::internal
