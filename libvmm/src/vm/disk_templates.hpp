// SPDX-License-Identifier: Apache-2.0
// Empty qcow2 disks (no backing file) copied from a template per size. qemu-img, a process
// that loads QEMU's block layer, was half of a create's time before QEMU could start, and an
// empty image of one size made by one qemu-img is always the same bytes (qcow2 holds no id
// and no time). The first disk of each size in a manager's life is made by qemu-img and kept
// as the template, so a qemu-img upgraded under a running daemon is used from its next start.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

class DiskTemplates {
 public:
  // `dir`: where the templates go, made on first use (the manager's own folder).
  DiskTemplates(std::string qemu_img, std::filesystem::path dir);
  // Creates `target` (which must not exist), an empty qcow2 disk of size_gb GiB.
  Status create(const std::filesystem::path& target, uint32_t size_gb);
  uint64_t copies() const;  // disks made by copying, for tests

 private:
  std::filesystem::path template_of(uint32_t size_gb) const { return dir_ / (std::to_string(size_gb) + "G.qcow2"); }
  void keep(const std::filesystem::path& made, uint32_t size_gb);
  std::string qemu_img_;
  std::filesystem::path dir_;
  mutable std::mutex mu_;
  std::set<uint32_t> made_;  // sizes whose template this manager wrote
  uint64_t copies_ = 0;
};

}  // namespace dstackvmm::internal
