// SPDX-License-Identifier: Apache-2.0
// The supervisor: a small process that owns the QEMU processes so they outlive the daemon.
// Upstream's wire (HTTP over a unix socket, {"data": ...} / {"error": ...} envelopes).
#pragma once


#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <dstackvmm/config.hpp>
#include <dstackvmm/process_launcher.hpp>

namespace httplib {
class Client;
}

namespace dstackvmm {

// Answers one supervisor request (`method` "GET"/"POST"/"DELETE", `path` like "/stop/<id>")
// from `launcher`: /deploy, /start/<id>, /stop/<id>, /remove/<id>, /list, /info/<id>, /ping,
// /clear, /shutdown. Returns (HTTP status, body); errors are 200 with {"error": ...} as upstream.
// `shutdown` is called for /shutdown after every process was stopped.
std::pair<int, std::string> handle_supervisor_request(ProcessLauncher& launcher, const std::string& method,
                                                      const std::string& path, const std::string& body,
                                                      const std::function<void()>& shutdown);

// A ProcessLauncher backed by a supervisor at a unix socket. When the supervisor is gone
// (connection refused), `respawn` is called once and the call retried. Thread-safe.
class SupervisorClient final : public ProcessLauncher {
 public:
  explicit SupervisorClient(std::filesystem::path socket, std::function<Status()> respawn = {});
  Status ping();
  Status start(const ProcessSpec& spec) override;
  Status stop(const std::string& id) override;
  Status remove(const std::string& id) override;
  // kUnavailable when the supervisor does not answer in time (3 s) or is gone.
  Result<std::optional<ProcessInfo>> info(const std::string& id) override;
  Result<std::vector<ProcessInfo>> list() override;
  // The supervisor's /changes route (ours); an upstream supervisor's whole list instead.
  Result<ProcessChanges> changes(uint64_t since) override;
  // The supervisor's /running route (ours); changes(0), filtered, from an upstream one.
  Result<std::vector<ProcessInfo>> running() override;
  // A long poll on the supervisor's /wait route.
  Result<uint64_t> wait_change(uint64_t generation, std::chrono::milliseconds timeout) override;
  // A long poll on the supervisor's /watch route (ours); the two above where it has none.
  Result<ProcessChanges> watch_changes(uint64_t since, std::chrono::milliseconds timeout) override;
  bool cancel_waits() override;
  // From now on a supervisor that is gone is not started again: for a daemon shutting down,
  // which must not leave a new supervisor behind it.
  void stop_respawning() { respawn_off_ = true; }

 private:
  // The body of a 200 answer (answer_of() reads it); transport failures and other statuses as errors.
  Result<std::string> call(const std::string& method, const std::string& path, const std::string& body,
                           int read_timeout_s = 0);
  // GETs `path` on a connection of its own that cancel_waits() can end (then nullopt); the
  // status and body otherwise.
  Result<std::optional<std::pair<int, std::string>>> long_poll(const std::string& path, uint64_t timeout_ms);
  std::atomic<bool> no_wait_route_{false};
  std::atomic<bool> no_changes_route_{false};
  std::atomic<bool> no_running_route_{false};
  std::atomic<bool> no_watch_route_{false};
  std::atomic<bool> respawn_off_{false};
  std::mutex wait_mu_;
  uint64_t cancels_ = 0;                   // guarded by wait_mu_
  std::set<httplib::Client*> waiting_;  // long polls in progress, guarded by wait_mu_
  std::filesystem::path socket_;
  std::function<Status()> respawn_;
};

// Connects to the supervisor of [supervisor] `config`, starting `exe` (with --uds, --pid-file,
// --log-file and --detach as configured) when none answers and auto_start is set.
// kUnavailable "failed to connect to supervisor at unix:<sock>" when it still does not answer.
Result<std::shared_ptr<SupervisorClient>> connect_supervisor(const SupervisorConfig& config,
                                                             const std::filesystem::path& exe);

}  // namespace dstackvmm
