// SPDX-License-Identifier: Apache-2.0
// What this host can do, read from injectable /proc and /dev roots.
#include "host/host_probe.hpp"

#include "process/spawn.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "base/fs_util.hpp"

namespace dstackvmm::internal {

bool cpu_has_any_flag(const HostRoots& roots, std::initializer_list<const char*> flags) {
  auto info = read_file(roots.proc / "cpuinfo");
  if (!info.ok()) return false;
  std::istringstream lines(*info);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    std::string w;
    while (words >> w)
      for (const char* f : flags)
        if (w == f) return true;
  }
  return false;
}

Accel resolve_accel(Accel configured, const HostRoots& roots) {
  if (configured != Accel::kAuto) return configured;
  if (!cpu_has_any_flag(roots, {"vmx", "svm"})) return Accel::kTcg;
  int fd = ::open((roots.dev / "kvm").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Accel::kTcg;
  ::close(fd);
  return Accel::kKvm;
}

Platform resolve_platform(Platform configured, const HostRoots& roots) {
  if (configured != Platform::kAuto) return configured;
  return cpu_has_any_flag(roots, {"sev_snp"}) ? Platform::kAmdSevSnp : Platform::kTdx;
}

GuestChannel::Kind resolve_channel(GuestChannelMode configured, const HostRoots& roots) {
  if (configured == GuestChannelMode::kVsock) return GuestChannel::Kind::kVsock;
  if (configured == GuestChannelMode::kUserNet) return GuestChannel::Kind::kUserNet;
  std::error_code ec;
  return std::filesystem::exists(roots.dev / "vhost-vsock", ec) ? GuestChannel::Kind::kVsock
                                                                : GuestChannel::Kind::kUserNet;
}

std::string find_qemu(const std::string& configured) {
  return find_program(configured.empty() ? "qemu-system-x86_64" : configured);
}

}  // namespace dstackvmm::internal
