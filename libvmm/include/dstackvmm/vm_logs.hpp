// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// "serial" (default) -> serial.log, "stdout" -> stdout.log, "stderr" -> stderr.log; "" for others.
DSTACKVMM_EXPORT std::string log_file_name(std::string_view channel);
// The last `lines` lines of `text` (each with its newline).
DSTACKVMM_EXPORT std::string tail_lines(std::string_view text, size_t lines);
// The last `lines` lines of the file at `path`, reading backwards from its end and never more
// than `max_bytes` (a 300 MB log costs no more than its tail). `end` receives the offset the
// tail ends at, where a follower continues. Errors name the file.
DSTACKVMM_EXPORT Result<std::string> read_log_tail(const std::filesystem::path& path, size_t lines, size_t max_bytes, uint64_t* end = nullptr);
// `text` without ANSI escape sequences (CSI and OSC), as ansi=false asks.
DSTACKVMM_EXPORT std::string strip_ansi(std::string_view text);

}  // namespace dstackvmm
