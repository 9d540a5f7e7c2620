// SPDX-License-Identifier: Apache-2.0
// What this host can do, read from injectable /proc and /dev roots.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>

#include <dstackvmm/config.hpp>
#include <dstackvmm/qemu_command.hpp>

namespace dstackvmm::internal {

struct HostRoots {
  std::filesystem::path proc = "/proc";
  std::filesystem::path dev = "/dev";
};

// auto: kvm only when the CPU advertises vmx or svm and <dev>/kvm opens; a paravirtual
// /dev/kvm without them (as on our CI) hangs guests.
Accel resolve_accel(Accel configured, const HostRoots& roots);
// auto: amd-sev-snp when cpuinfo flags have sev_snp, else tdx (upstream's rule).
Platform resolve_platform(Platform configured, const HostRoots& roots);
// auto: vsock when <dev>/vhost-vsock exists, else user-net.
GuestChannel::Kind resolve_channel(GuestChannelMode configured, const HostRoots& roots);
// The QEMU to run: the configured path, or qemu-system-x86_64 on PATH; "" when none.
std::string find_qemu(const std::string& configured);

// Whether /proc/cpuinfo lists any of `flags`.
bool cpu_has_any_flag(const HostRoots& roots, std::initializer_list<const char*> flags);

}  // namespace dstackvmm::internal
