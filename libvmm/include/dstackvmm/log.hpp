// SPDX-License-Identifier: Apache-2.0
// Process-wide logging: one line per message, filtered by level, to stderr or a sink.
#pragma once

#include <dstackvmm/export.hpp>

#include <functional>
#include <optional>
#include <string_view>

namespace dstackvmm {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

DSTACKVMM_EXPORT std::optional<LogLevel> parse_log_level(std::string_view name);
DSTACKVMM_EXPORT void set_log_level(LogLevel level);
DSTACKVMM_EXPORT bool log_enabled(LogLevel level);

// Receives every enabled log line instead of stderr. Called from any thread, one line at a
// time (the library serialises calls); must not log itself.
using LogSink = std::function<void(LogLevel level, std::string_view category, std::string_view message)>;
// Process-wide; null restores the default: "2026-11-26T17:30:00Z INFO  vmm: message" on stderr.
DSTACKVMM_EXPORT void set_log_sink(LogSink sink);

// Thread-safe.
DSTACKVMM_EXPORT void log_message(LogLevel level, std::string_view category, std::string_view message);

}  // namespace dstackvmm
