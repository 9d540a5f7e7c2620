// SPDX-License-Identifier: Apache-2.0
// Upstream supervisor's wire shapes: ProcessConfig and ProcessInfo as JSON.
#include "process/process_json.hpp"

namespace dstackvmm::internal {

using nlohmann::json;

json process_config_json(const ProcessSpec& s, SpecForm form) {
  bool whole = form == SpecForm::kWhole && !s.argv.empty();
  return {{"id", s.id},
          {"name", s.name},
          {"command", s.argv.empty() ? "" : s.argv.front()},
          {"args", whole ? std::vector<std::string>(s.argv.begin() + 1, s.argv.end()) : std::vector<std::string>{}},
          {"env", form == SpecForm::kWhole ? s.env : std::map<std::string, std::string>{}},
          {"cwd", s.cwd.string()},
          {"stdout", s.stdout_path.string()},
          {"stderr", s.stderr_path.string()},
          {"pidfile", s.pid_file.string()},
          {"cid", s.cid ? json(*s.cid) : json()},
          {"note", s.note}};
}

ProcessSpec process_config_from(const json& j) {
  ProcessSpec s;
  s.id = j.at("id").get<std::string>();
  s.name = j.value("name", "");
  s.argv.push_back(j.at("command").get<std::string>());
  for (const auto& a : j.value("args", json::array())) s.argv.push_back(a.get<std::string>());
  s.env = j.value("env", std::map<std::string, std::string>{});
  s.cwd = j.value("cwd", "");
  s.stdout_path = j.value("stdout", "");
  s.stderr_path = j.value("stderr", "");
  s.pid_file = j.value("pidfile", "");
  if (j.contains("cid") && j["cid"].is_number_unsigned()) s.cid = j["cid"].get<uint32_t>();
  s.note = j.value("note", "");
  return s;
}

json process_info_json(const ProcessInfo& i, SpecForm form) {
  json status;
  switch (i.status) {
    case ProcessStatus::kRunning: status = "running"; break;
    case ProcessStatus::kStopped: status = "stopped"; break;
    case ProcessStatus::kExited: status = {{"exited", i.wait_status}}; break;
    case ProcessStatus::kError: status = {{"error", i.error}}; break;
  }
  return {{"config", process_config_json(i.spec, form)},
          {"state",
           {{"status", status},
            {"started", i.started},
            {"pid", i.pid ? json(*i.pid) : json()},
            {"started_at", i.started_at ? json(*i.started_at) : json()},
            {"stopped_at", i.stopped_at ? json(*i.stopped_at) : json()}}}};
}

ProcessInfo process_info_from(const json& j) {
  ProcessInfo i;
  i.spec = process_config_from(j.at("config"));
  const json& st = j.at("state");
  const json& status = st.at("status");
  if (status == "running") i.status = ProcessStatus::kRunning;
  else if (status == "stopped") i.status = ProcessStatus::kStopped;
  else if (status.is_object() && status.contains("exited")) {
    i.status = ProcessStatus::kExited;
    i.wait_status = status["exited"].get<int>();
  } else {
    i.status = ProcessStatus::kError;
    i.error = status.is_object() ? status.value("error", "") : status.dump();
  }
  i.started = st.value("started", false);
  if (st.contains("pid") && st["pid"].is_number()) i.pid = st["pid"].get<int>();
  if (st.contains("started_at") && st["started_at"].is_number()) i.started_at = st["started_at"].get<int64_t>();
  if (st.contains("stopped_at") && st["stopped_at"].is_number()) i.stopped_at = st["stopped_at"].get<int64_t>();
  return i;
}

}  // namespace dstackvmm::internal
