// SPDX-License-Identifier: Apache-2.0
// What exactly was launched at each boot of a VM, kept in its workdir as launch.json (the
// last few boots, written atomically): the QEMU argv, the sha256 of what the guest booted
// from, the placement (CID, ports, GPUs) and identity (compose hash, app id), and, once that
// QEMU has exited, how it ended and the last lines of its serial console.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/port_mapping.hpp>

namespace dstackvmm {

struct LaunchedFile {
  std::string role;    // firmware, kernel, initrd, rootfs, hda
  std::string path;
  uint64_t size = 0;
  std::string sha256;  // hex; "" while being computed, or when the file could not be read
};

struct LaunchExit {
  uint64_t time_ms = 0;  // when the manager saw it (unix ms)
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  std::vector<std::string> serial_tail;  // the serial log's last lines at that moment
};

struct LaunchRecord {
  uint64_t time_ms = 0;  // the start (unix ms)
  std::vector<std::string> argv;
  std::vector<LaunchedFile> files;
  std::string image, image_version, platform, accel;
  uint32_t cid = 0;
  std::vector<PortMapping> ports;
  std::vector<std::string> gpus;  // PCI slots
  std::string compose_hash, app_id;
  std::optional<LaunchExit> exit;  // set once this boot's QEMU has exited
};

}  // namespace dstackvmm
