// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <shared_mutex>
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
// Upstream's rotation of a VM log ([cvm.log], spec 6.6), copy-then-truncate so that the
// writer's open file (QEMU's serial log, the launcher's stdout/stderr, all O_APPEND) goes on
// working: <path>.<max_backups> is dropped, .i moves to .i+1, the live file is copied to .1
// and truncated in place, and a line `===== rotated N bytes to <name>.1 @ <stamp> =====` is
// appended. max_backups 0 truncates with `===== discarded N bytes @ <stamp> =====`. A missing
// or empty file is left alone. Returns whether it rotated.
DSTACKVMM_EXPORT Result<bool> rotate_log(const std::filesystem::path& path, uint32_t max_backups, std::string_view stamp);

// Held exclusively by rotate_live_log while it moves the backups and cuts the live file; a
// reader that follows a log across rotations (the daemon's /logs) holds it shared while it
// looks at both, so it sees a rotation whole or not at all.
DSTACKVMM_EXPORT std::shared_mutex& log_rotation_mutex();

// Rotation of a log its writer is appending to now, losing nothing: the whole blocks at its
// start are copied to <name>.1 (which ends with `===== rotated N bytes to <name>.1 @ <stamp>;
// the log goes on in <name> =====`) and then cut from the live file in one step
// (FALLOC_FL_COLLAPSE_RANGE), which the kernel orders against the writer's appends, so what is
// written meanwhile stays. `moved` receives N, the bytes cut from the start. A log of less than
// two blocks is left as it is (returns false). On a file system without that operation (tmpfs,
// btrfs) it falls back to rotate_log (which may lose what is written during the copy).
DSTACKVMM_EXPORT Result<bool> rotate_live_log(const std::filesystem::path& path, uint32_t max_backups, std::string_view stamp,
                                              uint64_t* moved = nullptr);
// "2026-12-01T23:42:34Z"
DSTACKVMM_EXPORT std::string rfc3339_utc(uint64_t unix_seconds);

// `text` without ANSI escape sequences (CSI and OSC), as ansi=false asks.
DSTACKVMM_EXPORT std::string strip_ansi(std::string_view text);

}  // namespace dstackvmm
