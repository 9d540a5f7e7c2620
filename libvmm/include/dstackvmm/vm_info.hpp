// SPDX-License-Identifier: Apache-2.0
// What a VM is now, as a listing or GetInfo shows it: its status, what the guest reported, its
// NICs and its configuration. Plain values, below the engine (the engine fills them in).
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm {

enum class VmStatus { kRunning, kExited, kStopping, kStopped, kRemoving, kUnknown };
DSTACKVMM_EXPORT std::string_view vm_status_name(VmStatus status);
// The other way; nullopt for a name no VmStatus has.
DSTACKVMM_EXPORT std::optional<VmStatus> vm_status_from_name(std::string_view name);

struct GuestEvent {
  std::string event;
  std::string body;
  uint64_t timestamp_ms = 0;
  bool operator==(const GuestEvent&) const = default;
};

struct NetworkInterfaceStatus {
  std::string mode;     // user | bridge | custom
  std::string backend;  // slirp | tap_bridge | custom
  std::string mac;
  std::optional<std::string> bridge_name;
  std::string netdev_id;  // net<i>
  bool operator==(const NetworkInterfaceStatus&) const = default;
};

struct VmInfo {
  std::string id;
  std::string name;
  VmStatus status = VmStatus::kStopped;
  std::string uptime;     // "1h 2m 3s", "never"
  std::string exited_at;  // time since the process stopped, "never"
  std::string app_id;
  std::optional<std::string> instance_id;
  // The guest agent's dashboard via the gateway, when the compose enables the gateway and the
  // guest has reported its instance id: https://<instance_id>-<agent_port>.<host>[:<port>].
  std::optional<std::string> app_url;
  VmConfiguration configuration;
  std::string boot_progress;
  std::string boot_error;
  std::string shutdown_progress;
  std::string image_version;
  std::vector<GuestEvent> events;
  std::vector<NetworkInterfaceStatus> interfaces;
  uint64_t created_at_ms = 0;
  uint32_t cid = 0;
  std::optional<int> pid;
  uint16_t agent_port = 0;  // user-net guest channel: loopback port of the guest agent
  // Set when re-adoption after a restart found something wrong (QMP socket or pid file gone,
  // host API down). The VM keeps running and stays manageable; this says what is missing.
  std::optional<std::string> degraded;
  // What a running VM's configuration changed in since its process started, which applies at
  // its next start: "resources", "image", "ports", "gpus", "networking", "urls", "machine",
  // "app compose, env or user config". Empty when nothing did, or when not known (a VM
  // re-adopted after the daemon restarted).
  std::vector<std::string> pending_changes;
  // The manager's, not on the wire: a new one whenever anything above but uptime and
  // exited_at changes. A listing with VmQuery::known leaves a VM the caller holds at its
  // revision undescribed (see there).
  uint64_t revision = 0;
  // Field by field: a caller can tell whether a VM changed since it last looked.
  bool operator==(const VmInfo&) const = default;
};

}  // namespace dstackvmm
