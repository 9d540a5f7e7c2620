// SPDX-License-Identifier: Apache-2.0
// Upstream supervisor's wire shapes: ProcessConfig and ProcessInfo as JSON (also our state file).
#pragma once

#include <nlohmann/json.hpp>

#include <dstackvmm/process_launcher.hpp>

namespace dstackvmm::internal {

// {id, name, command, args, env, cwd, stdout, stderr, pidfile, cid, note}. Brief: args and
// env empty (a VM's QEMU command line is most of a table's bytes, and a watcher of the table
// reads neither); still a document every reader of the whole form takes.
enum class SpecForm { kWhole, kBrief };
nlohmann::json process_config_json(const ProcessSpec& spec, SpecForm form = SpecForm::kWhole);
ProcessSpec process_config_from(const nlohmann::json& j);  // throws on a malformed document
// {config, state: {status, started, pid, started_at, stopped_at}}; status is "running",
// "stopped", {"exited": <raw wait status>} or {"error": "<msg>"}, as upstream.
nlohmann::json process_info_json(const ProcessInfo& info, SpecForm form = SpecForm::kWhole);
ProcessInfo process_info_from(const nlohmann::json& j);

}  // namespace dstackvmm::internal
