// SPDX-License-Identifier: Apache-2.0
// The syntaxes operators type when they deploy (spec/vmm-api.md §8, §9): sizes, port specs,
// and the app-compose.json that `vmmctl compose` writes.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/client/env_crypto.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/vm_spec.hpp>
#include <dstackvmm/port_mapping.hpp>

namespace dstackvmm::client {

// Memory and swap: "N" (MB), "NM"/"NMB", "NG"/"NGB", "NT"/"NTB", units in either case, a
// decimal number allowed ("1.5G"); the result must be a whole number of MB.
DSTACKVMM_EXPORT Result<uint32_t> parse_memory_mb(std::string_view text);
// Disk: "N" (GB), "NG"/"NGB", "NT"/"NTB"; the result must be a whole number of GB.
DSTACKVMM_EXPORT Result<uint32_t> parse_disk_gb(std::string_view text);
// "proto:host_port:vm_port" (address 127.0.0.1) or "proto:address:host_port:vm_port".
DSTACKVMM_EXPORT Result<PortMapping> parse_port_spec(std::string_view text);
// The reverse, always with the address: "tcp:127.0.0.1:8080:80".
DSTACKVMM_EXPORT std::string format_port_spec(const PortMapping& port);

// --gpu flags as a request: `all` among them (or `all_gpus`, --ppcie) attaches every GPU and
// NVSwitch; otherwise the listed slots; nothing given is nullopt (keep / none).
DSTACKVMM_EXPORT std::optional<GpuRequest> gpu_request(const std::vector<std::string>& slots, bool all_gpus = false);

struct ComposeOptions {
  std::string name;
  std::string docker_compose_file;  // the text of docker-compose.yaml
  std::optional<std::string> pre_launch_script;
  bool kms = false;
  bool gateway = false;
  bool local_key_provider = false;
  std::optional<std::string> key_provider;  // none | kms | local | tpm
  std::string key_provider_id;
  bool public_logs = false;
  bool public_sysinfo = false;
  std::vector<std::string> allowed_envs;  // the env file's keys
  bool no_instance_id = false;
  bool secure_time = false;
  uint64_t swap_bytes = 0;
  uint32_t event_log_version = 1;  // 1 or 2
};

// app-compose.json as upstream's CLI writes it: the keys in §9's order, 4-space indent, UTF-8
// kept as is, no newline at the end. Errors name a bad option (key_provider, event_log_version).
DSTACKVMM_EXPORT Result<std::string> build_app_compose(const ComposeOptions& options);

// update-env's edit of an app compose (upstream's): allowed_envs = the env's keys, and
// launch_token_hash = sha256(APP_LAUNCH_TOKEN) when the env has that key; keys keep their order
// and the text is re-dumped with 4 spaces. "" when nothing changes; an error when `compose` is
// not a JSON object (checked for size and depth before it is parsed).
DSTACKVMM_EXPORT Result<std::string> compose_with_env(std::string_view compose, const std::vector<EnvVar>& env);

// sha256 of the exact bytes, 64 lowercase hex digits: the compose hash, and (its first 40
// digits) the default app id. Also used for launch_token_hash.
DSTACKVMM_EXPORT std::string sha256_hex(std::string_view text);

}  // namespace dstackvmm::client
