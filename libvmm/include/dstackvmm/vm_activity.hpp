// SPDX-License-Identifier: Apache-2.0
// The manager's journal of what happened to its VMs, in order: lifecycle changes (created,
// started, exited with its status, restarted by policy, stopped, removed...) and what guests
// told the host API (boot progress, boot error, shutdown progress). A bounded ring in memory,
// numbered so that a reader can resume where it left off (GET /events, `vmmctl events`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dstackvmm {

struct VmActivity {
  // 1 more than the entry before. The first number of a manager is its opening time in unix
  // milliseconds, so numbers from an earlier daemon are below every number of this one.
  uint64_t seq = 0;
  uint64_t time_ms = 0;  // unix milliseconds
  std::string vm_id;
  // What happened, from the manager: created, started, stopping, stopped, exited, restarting,
  // restart_exhausted, removing, removed, or status (any other change of status, e.g. to
  // unknown while the supervisor cannot answer). From the guest: guest, with `event` set, and
  // panicked, a kernel panic its serial console showed (`detail`: the panic message).
  std::string kind;
  std::string status;  // the VM's status after it (vm_status_name)
  std::string event;   // kind guest: the host API event (boot.progress, boot.error, ...)
  std::string detail;  // guest: its payload (untrusted text); restarts: why and when
  std::optional<int> exit_code;    // exited: QEMU's exit code
  std::optional<int> exit_signal;  // exited: the signal that ended QEMU
};

struct VmActivityPage {
  std::vector<VmActivity> entries;  // seq > the asked `after`, oldest first
  // The reader missed entries: `after` is older than what the ring still holds (or was
  // given by another manager). `entries` then starts at the oldest held.
  bool gap = false;
  uint64_t last_seq = 0;  // the newest seq the manager has given (0: none yet)
};

}  // namespace dstackvmm
