// SPDX-License-Identifier: Apache-2.0
// The supervisor's routes, and the client the daemon uses as its ProcessLauncher.
#include <dstackvmm/supervisor.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dstackvmm/log.hpp>
#include <dstackvmm/unix_socket.hpp>

#include "json_limits.hpp"
#include "process_json.hpp"

namespace dstackvmm {

using nlohmann::json;

namespace {
std::pair<int, std::string> data(const json& d) { return {200, json{{"data", d}}.dump()}; }
std::pair<int, std::string> failure(const std::string& m) { return {200, json{{"error", m}}.dump()}; }
std::pair<int, std::string> status_reply(const Status& s) { return s.ok() ? data(nullptr) : failure(s.error().message); }
}  // namespace

std::pair<int, std::string> handle_supervisor_request(ProcessLauncher& l, const std::string& method,
                                                      const std::string& path, const std::string& body,
                                                      const std::function<void()>& shutdown) {
  auto arg = [&](const std::string& prefix) { return path.substr(prefix.size()); };
  if (method == "GET" && path == "/ping") return data("pong");
  if (method == "GET" && path == "/list") {
    json all = json::array();
    for (const auto& p : l.list()) all.push_back(internal::process_info_json(p));
    return data(all);
  }
  if (method == "GET" && path.rfind("/info/", 0) == 0) {
    auto i = l.info(arg("/info/"));
    return data(i ? internal::process_info_json(*i) : json());
  }
  if (method == "POST" && path == "/deploy") {
    try {
      std::string why;
      json in = internal::parse_json(body, {}, &why);
      if (in.is_discarded()) return failure("invalid ProcessConfig: " + why);
      ProcessSpec spec = internal::process_config_from(in);
      if (spec.id.empty()) return failure("Process ID is empty");
      return status_reply(l.start(spec));
    } catch (const std::exception& e) {
      return failure(std::string("invalid ProcessConfig: ") + e.what());
    }
  }
  if (method == "POST" && path.rfind("/start/", 0) == 0) {
    auto i = l.info(arg("/start/"));
    if (!i) return failure("Process not found");
    return status_reply(l.start(i->spec));
  }
  if (method == "POST" && path.rfind("/stop/", 0) == 0) return status_reply(l.stop(arg("/stop/")));
  if (method == "DELETE" && path.rfind("/remove/", 0) == 0) return status_reply(l.remove(arg("/remove/")));
  if (method == "POST" && path == "/clear") {
    for (const auto& p : l.list()) (void)l.remove(p.spec.id);
    return data(nullptr);
  }
  if (method == "POST" && path == "/shutdown") {
    for (const auto& p : l.list()) (void)l.stop(p.spec.id);
    if (shutdown) shutdown();
    return data(nullptr);
  }
  return {404, json{{"error", "not found: " + method + " " + path}}.dump()};
}

SupervisorClient::SupervisorClient(std::filesystem::path socket, std::function<Status()> respawn)
    : socket_(std::move(socket)), respawn_(std::move(respawn)) {}

Result<std::string> SupervisorClient::call(const std::string& method, const std::string& path, const std::string& body) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    httplib::Client c(socket_.string());
    c.set_address_family(AF_UNIX);
    // A stalled supervisor (stopped, swapping) may delay only the call that needs it, and
    // briefly: queries wait 3 s, changes 10 s (the supervisor answers both at once).
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(method == "GET" ? 3 : 10, 0);
    c.set_write_timeout(3, 0);
    httplib::Result r = method == "GET"    ? c.Get(path.c_str())
                        : method == "DELETE" ? c.Delete(path.c_str())
                                             : c.Post(path.c_str(), body, "application/json");
    if (r && r->status == 200) {
      json j = internal::parse_json(r->body);
      if (j.is_object() && j.contains("error"))
        return make_error(ErrorCode::kFailedPrecondition, j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
      if (!j.is_object() || !j.contains("data")) return make_error(ErrorCode::kUnavailable, "supervisor answered garbage");
      return j["data"].dump();
    }
    if (r) return make_error(ErrorCode::kUnavailable, "supervisor answered HTTP " + std::to_string(r->status));
    // Gone: a supervisor that crashed is started again, and re-adopts its processes. One that
    // is there but slow is not replaced (that would run two over the same guests).
    if (r.error() != httplib::Error::Connection)
      return make_error(ErrorCode::kUnavailable, "supervisor at unix:" + socket_.string() + " did not answer in time");
    if (attempt == 0 && respawn_) {
      log_message(LogLevel::kWarn, "supervisor", "supervisor at " + socket_.string() + " is gone; starting a new one");
      if (auto s = respawn_(); s.ok()) continue;
    }
    return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + socket_.string());
  }
  return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + socket_.string());
}

Status SupervisorClient::ping() {
  auto r = call("GET", "/ping", "");
  if (!r.ok()) return r.error();
  return {};
}

namespace {
Status not_found_as(const Result<std::string>& r) {
  if (r.ok()) return {};
  const std::string& m = r.error().message;
  if (m == "Process not found") return make_error(ErrorCode::kNotFound, m);
  if (m == "Process is already running") return make_error(ErrorCode::kAlreadyExists, m);
  return r.error();
}
}  // namespace

Status SupervisorClient::start(const ProcessSpec& spec) {
  return not_found_as(call("POST", "/deploy", internal::process_config_json(spec).dump()));
}
Status SupervisorClient::stop(const std::string& id) { return not_found_as(call("POST", "/stop/" + id, "null")); }
Status SupervisorClient::remove(const std::string& id) { return not_found_as(call("DELETE", "/remove/" + id, "")); }

std::optional<ProcessInfo> SupervisorClient::info(const std::string& id) {
  auto r = call("GET", "/info/" + id, "");
  if (!r.ok()) return std::nullopt;
  json j = internal::parse_json(*r);
  if (!j.is_object()) return std::nullopt;
  try {
    return internal::process_info_from(j);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<ProcessInfo> SupervisorClient::list() {
  std::vector<ProcessInfo> out;
  auto r = call("GET", "/list", "");
  if (!r.ok()) return out;
  json all = internal::parse_json(*r);
  if (!all.is_array()) return out;
  for (const auto& j : all) {
    try {
      out.push_back(internal::process_info_from(j));
    } catch (const std::exception&) {
    }
  }
  return out;
}

Result<std::shared_ptr<SupervisorClient>> connect_supervisor(const SupervisorConfig& config, const std::filesystem::path& exe) {
  std::filesystem::path sock = config.sock;
  auto spawn = [config, exe, sock]() -> Status {
    if (!config.auto_start) return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + sock.string());
    if (unix_socket_is_live(sock)) return {};
    std::vector<std::string> argv{exe.string(), "--uds", sock.string(), "--pid-file", config.pid_file,
                                  "--log-file", config.log_file, "--remove-existing-uds"};
    if (config.detached) argv.push_back("--detach");
    pid_t pid = ::fork();
    if (pid < 0) return make_error(ErrorCode::kIo, "fork failed");
    if (pid == 0) {
      ::setsid();  // not in the daemon's session: a Ctrl-C or kill of the daemon's group spares it
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    std::thread([pid] { ::waitpid(pid, nullptr, 0); }).detach();  // reap it should it exit
    for (int i = 1; i <= 10; ++i) {
      if (unix_socket_is_live(sock)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * i));
    }
    return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + sock.string());
  };
  auto client = std::make_shared<SupervisorClient>(sock, spawn);
  if (!unix_socket_is_live(sock))
    if (auto s = spawn(); !s.ok()) return s.error();
  if (auto s = client->ping(); !s.ok()) return s.error();
  return client;
}

}  // namespace dstackvmm
