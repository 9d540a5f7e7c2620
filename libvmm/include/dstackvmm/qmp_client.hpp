// SPDX-License-Identifier: Apache-2.0
// A QEMU Machine Protocol client over a unix socket. Every call has a deadline: a silent,
// closed or malformed peer is an error, never a hang. Not thread-safe (one owner at a time).
#pragma once

#include <dstackvmm/export.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

struct QmpEvent {
  std::string name;       // "SHUTDOWN", "POWERDOWN", ...
  std::string data_json;  // the event's "data" object as JSON text ("{}" when absent)
};

struct QmpStatus {
  std::string status;  // "running", "paused", "shutdown", ...
  bool running = false;
};

// One QMP connection. Not thread-safe: one caller at a time (open one per thread).
class DSTACKVMM_EXPORT QmpClient {
 public:
  using Millis = std::chrono::milliseconds;

  // Connects (retrying while QEMU creates the socket, up to `timeout`), reads the greeting and
  // negotiates capabilities. kUnavailable when nothing answers in time; kQemu when the peer
  // does not speak QMP.
  static Result<std::unique_ptr<QmpClient>> connect(const std::filesystem::path& socket,
                                                    Millis timeout = Millis(5000));
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs `command` with optional `arguments` (a JSON object as text) and returns the "return"
  // value as JSON text. Events that arrive meanwhile are kept (see events()).
  // kQemu "QMP <command> failed: <desc>" on an error reply.
  Result<std::string> execute(std::string_view command, std::string_view arguments = {},
                              Millis timeout = Millis(10000));
  Result<QmpStatus> query_status(Millis timeout = Millis(10000));
  Status system_powerdown(Millis timeout = Millis(10000));
  Status quit(Millis timeout = Millis(10000));
  // Returns the first event named `name`, already received or arriving within `timeout`.
  Result<QmpEvent> wait_event(std::string_view name, Millis timeout);

  const std::vector<QmpEvent>& events() const { return events_; }
  const std::string& qemu_version() const { return version_; }

 private:
  explicit QmpClient(int fd) : fd_(fd) {}
  Result<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  void remember_event(std::string name, std::string data);
  Status send(std::string_view text);
  Status handshake(std::chrono::steady_clock::time_point deadline);

  int fd_;
  std::string buffer_;
  std::string version_;
  std::vector<QmpEvent> events_;
};

}  // namespace dstackvmm
