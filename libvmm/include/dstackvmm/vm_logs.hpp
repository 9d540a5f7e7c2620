// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dstackvmm {

// "serial" (default) -> serial.log, "stdout" -> stdout.log, "stderr" -> stderr.log; "" for others.
std::string log_file_name(std::string_view channel);
// The last `lines` lines of `text` (each with its newline).
std::string tail_lines(std::string_view text, size_t lines);
// `text` without ANSI escape sequences (CSI and OSC), as ansi=false asks.
std::string strip_ansi(std::string_view text);

}  // namespace dstackvmm
