// SPDX-License-Identifier: Apache-2.0
// Files the way state must be written: atomically (temp, fsync, rename, fsync dir).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// Replaces `path` with `data` so that a crash leaves either the old or the new content.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data,
                         mode_t mode = 0644);
Result<std::string> read_file(const std::filesystem::path& path);
// Removes a folder tree; a missing folder is fine.
Status remove_tree(const std::filesystem::path& path);
Status make_dirs(const std::filesystem::path& path);

}  // namespace dstackvmm::internal
