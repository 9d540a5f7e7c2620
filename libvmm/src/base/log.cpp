// SPDX-License-Identifier: Apache-2.0
// Process-wide logging: one line per message, filtered by level, to stderr or a sink.
#include <dstackvmm/log.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace dstackvmm {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mutex;
LogSink g_sink;  // guarded by g_mutex
constexpr const char* kNames[] = {"TRACE", "DEBUG", "INFO ", "WARN ", "ERROR"};
}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

void set_log_sink(LogSink sink) {
  std::lock_guard lock(g_mutex);
  g_sink = std::move(sink);
}

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void log_message(LogLevel level, std::string_view category, std::string_view message) {
  if (!log_enabled(level)) return;
  {
    std::lock_guard lock(g_mutex);
    if (g_sink) {
      g_sink(level, category, message);
      return;
    }
  }
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = std::string(stamp) + " " + kNames[static_cast<int>(level)] + " " +
                     std::string(category) + ": " + std::string(message) + "\n";
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace dstackvmm
