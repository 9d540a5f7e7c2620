// SPDX-License-Identifier: Apache-2.0
// Process-wide logging: one line per message on stderr, filtered by level.
#pragma once

#include <optional>
#include <string_view>

namespace dstackvmm {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

std::optional<LogLevel> parse_log_level(std::string_view name);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// "2026-11-26T17:30:00Z INFO  vmm: message". Thread-safe.
void log_message(LogLevel level, std::string_view category, std::string_view message);

}  // namespace dstackvmm
