// SPDX-License-Identifier: Apache-2.0
// What exactly was launched at each boot of a VM, kept in its workdir as launch-history.json (the
// last few boots, written atomically): the QEMU argv, the sha256 of what the guest booted
// from, the placement (CID, ports, GPUs) and identity (compose hash, app id), and, once that
// QEMU has exited, how it ended and the last lines of its serial console. A guest kernel that
// panics reboots inside the same QEMU (no -no-reboot, as upstream): those boots end without an
// exit, and are listed as the panics the serial console showed.
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

// A kernel panic the guest's serial console showed during this launch ("Kernel panic - not
// syncing"). The console is the guest's: this is what the guest printed, not a host finding.
struct LaunchPanic {
  uint64_t time_ms = 0;  // when the manager read it (unix ms)
  std::string message;   // the text after "Kernel panic - not syncing: "
  std::vector<std::string> serial_tail;  // the lines before it, its own, and those after
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
  std::string vm_config;  // the vm_config the guest got in .sys-config.json (what a verifier reads)
  std::string mr_config;  // the MrConfigV3 document bound in MRCONFIGID / HOST_DATA ("" for V1 or none)
  std::optional<LaunchExit> exit;  // set once this boot's QEMU has exited
  std::vector<LaunchPanic> panics;  // the last few kernel panics of this QEMU, oldest first
  uint32_t panic_count = 0;         // all of them (a boot loop inside QEMU can run for days)
};

}  // namespace dstackvmm
