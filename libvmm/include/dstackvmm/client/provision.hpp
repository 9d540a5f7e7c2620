// SPDX-License-Identifier: Apache-2.0
// Declarative provisioning (`vmmctl apply FILE`): a file lists the VMs that should exist, a
// plan says what to create, update, start or stop to get there, and applying it does exactly
// that. VMs are matched by name; VMs the file does not name are left alone.
#pragma once

#include <dstackvmm/export.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/client/env_crypto.hpp>
#include <dstackvmm/client/vmm_client.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/port_mapping.hpp>

namespace dstackvmm::client {

// One [[vm]] table, with deploy's flag names: name, image, vcpu, memory, disk (size strings or
// numbers), compose (path to an app-compose.json, relative to the file), ports (port specs),
// gpus, env_file, kms_urls, gateway_urls, stopped.
struct DesiredVm {
  std::string name;
  std::string image;
  uint32_t vcpu = 1;
  uint32_t memory_mb = 1024;
  uint32_t disk_gb = 20;
  std::string compose_file;  // the text read from `compose`
  std::vector<PortMapping> ports;
  std::vector<std::string> gpus;  // slots, or ["all"]
  std::optional<std::vector<EnvVar>> env;  // from env_file; sent on create only (see plan)
  std::vector<std::string> kms_urls;
  std::vector<std::string> gateway_urls;
  bool stopped = false;
};

// TOML (or JSON, by a .json name) with [[vm]] tables. Errors name the table and the key, and
// unknown keys are errors (a typo must not silently mean "default"). Bounded: 1 MiB, 1000 VMs.
DSTACKVMM_EXPORT Result<std::vector<DesiredVm>> load_provision_file(const std::filesystem::path& file);

struct PlanChange {
  std::string field;  // a deploy flag name: image, vcpu, memory, disk, compose, ports, gpus, ...
  std::string from;
  std::string to;
};

struct PlanStep {
  enum class Action { kCreate, kUpdate, kStart, kStop, kNone };
  Action action = Action::kNone;
  std::string name;
  std::string id;  // the existing VM's id (not for kCreate)
  std::vector<PlanChange> changes;
  // A running VM takes a change only at its next start, and resources (vcpu, memory, disk,
  // image) change only while it is stopped: so a running VM that changes is stopped first
  // (gracefully, then forced after ApplyOptions::stop_timeout) and started after.
  bool stop_first = false;
  bool start_after = false;
};

DSTACKVMM_EXPORT std::string_view plan_action_name(PlanStep::Action action);  // create, update, ...

// Compares `desired` with the daemon's VMs: `status_json` is a (non-brief) StatusResponse as
// VmmClient::status() returns it. Errors when a name is used by two VMs on the daemon or twice
// in the file, or when a disk would shrink.
DSTACKVMM_EXPORT Result<std::vector<PlanStep>> make_plan(const std::vector<DesiredVm>& desired, std::string_view status_json);

// The plan as JSON text: [{"action","name","id","changes":[{"field","from","to"}],"stop_first","start_after"}].
DSTACKVMM_EXPORT std::string plan_to_json(const std::vector<PlanStep>& plan);
// One line per step ("+ create web", "~ update api: ports a -> b (restart)", "= db unchanged").
DSTACKVMM_EXPORT std::string plan_to_text(const std::vector<PlanStep>& plan);

struct ApplyOptions {
  // Encrypts a VM's env for create; null: a VM with env_file is an error.
  std::function<Result<std::string>(const DesiredVm& vm, const std::string& app_id)> encrypt_env;
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(60)};  // graceful first, then forced
  std::function<void(const std::string& line)> progress;             // what is being done now
};

// Runs the plan's steps in order; stops at the first failure, naming the VM and the step.
DSTACKVMM_EXPORT Status apply_plan(const VmmClient& client, const std::vector<DesiredVm>& desired,
                                   const std::vector<PlanStep>& plan, const ApplyOptions& options);

}  // namespace dstackvmm::client
