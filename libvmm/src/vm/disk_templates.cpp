// SPDX-License-Identifier: Apache-2.0
#include "vm/disk_templates.hpp"

#include <unistd.h>

#include <atomic>

#include "process/run_command.hpp"

namespace dstackvmm::internal {

namespace fs = std::filesystem;

DiskTemplates::DiskTemplates(std::string qemu_img, fs::path dir) : qemu_img_(std::move(qemu_img)), dir_(std::move(dir)) {}

Status DiskTemplates::create(const fs::path& target, uint32_t size_gb) {
  bool have;
  {
    std::lock_guard lock(mu_);
    have = made_.count(size_gb) > 0;
  }
  std::error_code ec;
  if (have) {
    // Copied under a temporary name: a crash never leaves half a disk where QEMU looks.
    fs::path tmp = target;
    tmp += ".tmp";
    if (fs::copy_file(template_of(size_gb), tmp, fs::copy_options::overwrite_existing, ec) && ::rename(tmp.c_str(), target.c_str()) == 0) {
      std::lock_guard lock(mu_);
      ++copies_;
      return {};
    }
    fs::remove(tmp, ec);  // the template went (the folder was cleaned): qemu-img makes it again
    std::lock_guard lock(mu_);
    made_.erase(size_gb);
  }
  if (auto s = run_command({qemu_img_, "create", "-q", "-f", "qcow2", target.string(), std::to_string(size_gb) + "G"},
                           "Failed to create disk");
      !s.ok())
    return s;
  keep(target, size_gb);
  return {};
}

void DiskTemplates::keep(const fs::path& made, uint32_t size_gb) {
  // Best effort: without a template the next disk is made by qemu-img again.
  std::error_code ec;
  fs::create_directories(dir_, ec);
  fs::path tpl = template_of(size_gb);
  fs::path tmp = tpl;
  static std::atomic<uint64_t> serial{0};  // two creates of one size may keep it at once
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  if (!fs::copy_file(made, tmp, fs::copy_options::overwrite_existing, ec) || ::rename(tmp.c_str(), tpl.c_str()) != 0) {
    fs::remove(tmp, ec);
    return;
  }
  std::lock_guard lock(mu_);
  made_.insert(size_gb);
}

uint64_t DiskTemplates::copies() const {
  std::lock_guard lock(mu_);
  return copies_;
}

}  // namespace dstackvmm::internal
