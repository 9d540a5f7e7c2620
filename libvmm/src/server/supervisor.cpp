// SPDX-License-Identifier: Apache-2.0
// The supervisor's routes, and the client the daemon uses as its ProcessLauncher.
#include <dstackvmm/server/supervisor.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dstackvmm/log.hpp>
#include <dstackvmm/server/unix_socket.hpp>

#include "base/json_limits.hpp"
#include "process/process_json.hpp"
#include "process/spawn.hpp"

namespace dstackvmm {

using nlohmann::json;

namespace {
std::pair<int, std::string> data(const json& d) { return {200, json{{"data", d}}.dump()}; }
std::pair<int, std::string> failure(const std::string& m) { return {200, json{{"error", m}}.dump()}; }
std::pair<int, std::string> status_reply(const Status& s) { return s.ok() ? data(nullptr) : failure(s.error().message); }

// Specs brief (ProcessLauncher::changes): at a thousand VMs that ran, the whole table was
// ~4 MB of QEMU command lines, and a restarted daemon waited ~160 ms for it.
json changes_json(const ProcessChanges& ch) {
  json changed = json::array();
  for (const auto& p : ch.changed) changed.push_back(internal::process_info_json(p, internal::SpecForm::kBrief));
  return {{"generation", ch.generation}, {"complete", ch.complete}, {"changed", changed}, {"removed", ch.removed}};
}

// A number of a route: 1 to 18 digits, so it fits a uint64_t.
bool digits(const std::string& t) { return !t.empty() && t.size() < 19 && t.find_first_not_of("0123456789") == std::string::npos; }

// "<generation>/<timeout_ms>" of /wait and /watch; the timeout capped at 30 s.
std::optional<std::pair<uint64_t, uint64_t>> wait_args(const std::string& rest) {
  size_t slash = rest.find('/');
  if (slash == std::string::npos || !digits(rest.substr(0, slash)) || !digits(rest.substr(slash + 1))) return std::nullopt;
  return std::make_pair(std::stoull(rest.substr(0, slash)), std::min<uint64_t>(std::stoull(rest.substr(slash + 1)), 30000));
}
}  // namespace

std::pair<int, std::string> handle_supervisor_request(ProcessLauncher& l, const std::string& method,
                                                      const std::string& path, const std::string& body,
                                                      const std::function<void()>& shutdown) {
  auto arg = [&](const std::string& prefix) { return path.substr(prefix.size()); };
  if (method == "GET" && path == "/ping") return data("pong");
  if (method == "GET" && path == "/list") {
    auto procs = l.list();
    if (!procs.ok()) return failure(procs.error().message);
    json all = json::array();
    for (const auto& p : *procs) all.push_back(internal::process_info_json(p));
    return data(all);
  }
  if (method == "GET" && path.rfind("/info/", 0) == 0) {
    auto i = l.info(arg("/info/"));
    if (!i.ok()) return failure(i.error().message);
    return data(*i ? internal::process_info_json(**i) : json());
  }
  if (method == "GET" && path.rfind("/wait/", 0) == 0) {
    // Ours, not upstream's: /wait/<generation>/<timeout_ms> answers once the table changed
    // after <generation>, or at the timeout, with the current generation.
    auto a = wait_args(arg("/wait/"));
    if (!a) return failure("usage: /wait/<generation>/<timeout_ms>");
    auto next = l.wait_change(a->first, std::chrono::milliseconds(a->second));
    if (!next.ok()) return failure(next.error().message);
    return data(*next);
  }
  if (method == "GET" && path.rfind("/watch/", 0) == 0) {
    // Ours: /watch/<generation>/<timeout_ms> is /wait and /changes in one answer, the entries
    // changed after <generation> once there are any: the daemon learns of an exit in one
    // message on a connection already open.
    auto a = wait_args(arg("/watch/"));
    if (!a) return failure("usage: /watch/<generation>/<timeout_ms>");
    auto ch = l.watch_changes(a->first, std::chrono::milliseconds(a->second));
    if (!ch.ok()) return failure(ch.error().message);
    return data(changes_json(*ch));
  }
  if (method == "GET" && path.rfind("/changes/", 0) == 0) {
    // Ours, not upstream's: the entries changed after a generation (see ProcessLauncher::changes).
    std::string since = arg("/changes/");
    if (!digits(since)) return failure("usage: /changes/<generation>");
    auto ch = l.changes(std::stoull(since));
    if (!ch.ok()) return failure(ch.error().message);
    return data(changes_json(*ch));
  }
  if (method == "GET" && path == "/running") {
    // Ours: the entries whose process runs, brief (a restarted daemon re-adopts these first).
    auto procs = l.running();
    if (!procs.ok()) return failure(procs.error().message);
    json all = json::array();
    for (const auto& p : *procs) all.push_back(internal::process_info_json(p, internal::SpecForm::kBrief));
    return data(all);
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
    if (!i.ok()) return failure(i.error().message);
    if (!*i) return failure("Process not found");
    return status_reply(l.start((*i)->spec));
  }
  if (method == "POST" && path.rfind("/stop/", 0) == 0) return status_reply(l.stop(arg("/stop/")));
  if (method == "DELETE" && path.rfind("/remove/", 0) == 0) return status_reply(l.remove(arg("/remove/")));
  if (method == "POST" && path == "/clear") {
    for (const auto& p : l.list().value_or({})) (void)l.remove(p.spec.id);
    return data(nullptr);
  }
  if (method == "POST" && path == "/shutdown") {
    for (const auto& p : l.list().value_or({})) (void)l.stop(p.spec.id);
    if (shutdown) shutdown();
    return data(nullptr);
  }
  return {404, json{{"error", "not found: " + method + " " + path}}.dump()};
}

SupervisorClient::SupervisorClient(std::filesystem::path socket, std::function<Status()> respawn)
    : socket_(std::move(socket)), respawn_(std::move(respawn)) {}

Result<std::string> SupervisorClient::call(const std::string& method, const std::string& path, const std::string& body,
                                           int read_timeout_s) {
  int busy_retries = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    httplib::Client c(socket_.string());
    c.set_address_family(AF_UNIX);
    // A stalled supervisor (stopped, swapping) may delay only the call that needs it, and
    // briefly: queries wait 3 s, changes 10 s (the supervisor answers both at once).
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(read_timeout_s > 0 ? read_timeout_s : method == "GET" ? 3 : 10, 0);
    c.set_write_timeout(3, 0);
    httplib::Result r = method == "GET"    ? c.Get(path.c_str())
                        : method == "DELETE" ? c.Delete(path.c_str())
                                             : c.Post(path.c_str(), body, "application/json");
    if (r && r->status == 200) return std::move(r->body);  // read by answer_of()
    if (r) return make_error(ErrorCode::kUnavailable, "supervisor answered HTTP " + std::to_string(r->status));
    // Gone: a supervisor that crashed is started again, and re-adopts its processes. One that
    // is there but slow is not replaced (that would run two over the same guests).
    if (r.error() != httplib::Error::Connection)
      return make_error(ErrorCode::kUnavailable, "supervisor at unix:" + socket_.string() + " did not answer in time");
    // There but busy (its backlog full): asked again shortly, for up to about 2 s.
    if (busy_retries < 8 && unix_socket_is_live(socket_)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 << busy_retries++));
      --attempt;
      continue;
    }
    if (attempt == 0 && respawn_ && !respawn_off_) {
      log_message(LogLevel::kWarn, "supervisor", "supervisor at " + socket_.string() + " is gone; starting a new one");
      if (auto s = respawn_(); s.ok()) continue;
    }
    return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + socket_.string());
  }
  return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + socket_.string());
}

namespace {
// The "data" of a supervisor's answer (call()'s body), parsed once: at a thousand VMs that
// ran, the whole table is most of a megabyte.
Result<json> answer_of(const Result<std::string>& body) {
  if (!body.ok()) return body.error();
  json j = internal::parse_json(*body);
  if (j.is_object() && j.contains("error"))
    return make_error(ErrorCode::kFailedPrecondition, j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
  if (!j.is_object() || !j.contains("data")) return make_error(ErrorCode::kUnavailable, "supervisor answered garbage");
  return std::move(j["data"]);
}
}  // namespace

Status SupervisorClient::ping() {
  auto r = answer_of(call("GET", "/ping", ""));
  if (!r.ok()) return r.error();
  return {};
}

namespace {
Status not_found_as(const Result<json>& r) {
  if (r.ok()) return {};
  const std::string& m = r.error().message;
  if (m == "Process not found") return make_error(ErrorCode::kNotFound, m);
  if (m == "Process is already running") return make_error(ErrorCode::kAlreadyExists, m);
  return r.error();
}
}  // namespace

namespace {
Result<ProcessChanges> changes_from(const json& j) {
  try {
    ProcessChanges out;
    out.generation = j.at("generation").get<uint64_t>();
    out.complete = j.at("complete").get<bool>();
    for (const auto& p : j.at("changed")) out.changed.push_back(internal::process_info_from(p));
    for (const auto& id : j.at("removed")) out.removed.push_back(id.get<std::string>());
    return out;
  } catch (const std::exception& e) {
    // One entry we cannot read would hide a process: the whole answer is unusable.
    return make_error(ErrorCode::kUnavailable, std::string("supervisor answered unreadable changes: ") + e.what());
  }
}
}  // namespace

Status SupervisorClient::start(const ProcessSpec& spec) {
  return not_found_as(answer_of(call("POST", "/deploy", internal::process_config_json(spec).dump())));
}
Status SupervisorClient::stop(const std::string& id) { return not_found_as(answer_of(call("POST", "/stop/" + id, "null"))); }
Status SupervisorClient::remove(const std::string& id) { return not_found_as(answer_of(call("DELETE", "/remove/" + id, ""))); }

Result<std::optional<ProcessInfo>> SupervisorClient::info(const std::string& id) {
  auto r = answer_of(call("GET", "/info/" + id, ""));
  if (!r.ok()) return r.error();
  const json& j = *r;
  if (j.is_null()) return std::optional<ProcessInfo>();
  try {
    return std::optional<ProcessInfo>(internal::process_info_from(j));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kUnavailable, std::string("supervisor answered an unreadable process: ") + e.what());
  }
}

namespace {
// A route of ours that this supervisor lacks (upstream's, or one from before the route): its
// 404 body is not a supervisor answer, so call() reports the status.
bool route_missing(const Error& e) { return e.message.find("HTTP 404") != std::string::npos; }

// An answer of /list or /running.
Result<std::vector<ProcessInfo>> processes_from(const json& all) {
  if (!all.is_array()) return make_error(ErrorCode::kUnavailable, "supervisor answered a list that is not an array");
  std::vector<ProcessInfo> out;
  for (const auto& j : all) {
    try {
      out.push_back(internal::process_info_from(j));
    } catch (const std::exception& e) {
      // One entry we cannot read would hide a process: the whole answer is unusable.
      return make_error(ErrorCode::kUnavailable, std::string("supervisor answered an unreadable process: ") + e.what());
    }
  }
  return out;
}
}  // namespace

Result<std::vector<ProcessInfo>> SupervisorClient::list() {
  auto r = answer_of(call("GET", "/list", ""));
  if (!r.ok()) return r.error();
  return processes_from(*r);
}

Result<std::vector<ProcessInfo>> SupervisorClient::running() {
  if (no_running_route_) return ProcessLauncher::running();
  auto r = answer_of(call("GET", "/running", ""));
  if (!r.ok()) {
    if (route_missing(r.error())) {
      no_running_route_ = true;
      return ProcessLauncher::running();
    }
    return r.error();
  }
  return processes_from(*r);
}

Result<ProcessChanges> SupervisorClient::changes(uint64_t since) {
  if (no_changes_route_) return ProcessLauncher::changes(since);
  auto r = answer_of(call("GET", "/changes/" + std::to_string(since), ""));
  if (!r.ok()) {
    if (route_missing(r.error())) {  // the whole list then
      no_changes_route_ = true;
      return ProcessLauncher::changes(since);
    }
    return r.error();
  }
  return changes_from(*r);
}

Result<std::optional<std::pair<int, std::string>>> SupervisorClient::long_poll(const std::string& path, uint64_t timeout_ms) {
  httplib::Client c(socket_.string());
  c.set_address_family(AF_UNIX);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(static_cast<time_t>(timeout_ms / 1000 + 3), 0);  // a live supervisor answers at the timeout
  uint64_t epoch;
  {
    std::lock_guard lock(wait_mu_);
    epoch = cancels_;
    waiting_.insert(&c);
  }
  httplib::Result r = c.Get(path.c_str());
  {
    std::lock_guard lock(wait_mu_);
    waiting_.erase(&c);
    if (cancels_ != epoch) return std::optional<std::pair<int, std::string>>();
  }
  if (!r) return make_error(ErrorCode::kUnavailable, "supervisor at unix:" + socket_.string() + " did not answer: " + httplib::to_string(r.error()));
  return std::optional<std::pair<int, std::string>>(std::make_pair(r->status, std::move(r->body)));
}

Result<uint64_t> SupervisorClient::wait_change(uint64_t generation, std::chrono::milliseconds timeout) {
  if (no_wait_route_) return ProcessLauncher::wait_change(generation, timeout);
  auto ms = static_cast<uint64_t>(std::max<int64_t>(0, timeout.count()));
  auto r = long_poll("/wait/" + std::to_string(generation) + "/" + std::to_string(ms), ms);
  if (!r.ok()) return r.error();
  if (!*r) return generation;  // cancelled
  auto& [status, body] = **r;
  if (status == 404) {  // a supervisor without the route (upstream's) is asked at the timeout instead
    no_wait_route_ = true;
    return ProcessLauncher::wait_change(generation, timeout);
  }
  json j = internal::parse_json(body);
  if (status != 200 || !j.is_object() || !j.contains("data") || !j["data"].is_number_unsigned())
    return make_error(ErrorCode::kUnavailable, "supervisor answered /wait with garbage");
  return j["data"].get<uint64_t>();
}

Result<ProcessChanges> SupervisorClient::watch_changes(uint64_t since, std::chrono::milliseconds timeout) {
  if (no_watch_route_) return ProcessLauncher::watch_changes(since, timeout);
  auto ms = static_cast<uint64_t>(std::max<int64_t>(0, timeout.count()));
  auto r = long_poll("/watch/" + std::to_string(since) + "/" + std::to_string(ms), ms);
  if (!r.ok()) return r.error();
  if (!*r) return ProcessChanges{since, false, {}, {}};  // cancelled
  auto& [status, body] = **r;
  if (status == 404) {  // a supervisor from before the route, or upstream's
    no_watch_route_ = true;
    return ProcessLauncher::watch_changes(since, timeout);
  }
  json j = internal::parse_json(body);
  if (status != 200 || !j.is_object()) return make_error(ErrorCode::kUnavailable, "supervisor answered /watch with garbage");
  if (j.contains("error"))
    return make_error(ErrorCode::kUnavailable, "supervisor: " + (j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump()));
  if (!j.contains("data")) return make_error(ErrorCode::kUnavailable, "supervisor answered /watch with garbage");
  return changes_from(j["data"]);
}

bool SupervisorClient::cancel_waits() {
  std::lock_guard lock(wait_mu_);
  ++cancels_;
  for (auto* c : waiting_) c->stop();
  return true;
}

Result<std::shared_ptr<SupervisorClient>> connect_supervisor(const SupervisorConfig& config, const std::filesystem::path& exe) {
  std::filesystem::path sock = config.sock;
  auto spawn = [config, exe, sock]() -> Status {
    if (!config.auto_start) return make_error(ErrorCode::kUnavailable, "failed to connect to supervisor at unix:" + sock.string());
    if (unix_socket_is_live(sock)) return {};
    std::vector<std::string> argv{exe.string(), "--uds", sock.string(), "--pid-file", config.pid_file,
                                  "--log-file", config.log_file, "--remove-existing-uds"};
    if (config.detached) argv.push_back("--detach");
    internal::SpawnSpec how;
    how.argv = argv;  // new session: a Ctrl-C or kill of the daemon's group spares it
    auto child = internal::spawn_process(how);
    if (!child.ok()) return child.error();
    // Reaped by the one watcher when it exits (at once when it detaches).
    internal::ChildWatcher::instance().watch(child->pidfd, [](int) {});
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
