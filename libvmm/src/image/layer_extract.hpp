// SPDX-License-Identifier: Apache-2.0
// Unpacking OCI image layers (tar, optionally compressed) without ever leaving the target
// folder. A layer comes from a registry, possibly over plain HTTP: every entry is hostile.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct LayerLimits {
  uint64_t max_bytes = uint64_t{16} << 30;  // file content written, over all layers of one image
  uint64_t max_entries = 200000;            // entries, over all layers
};

// What has been unpacked into one folder so far; carried from layer to layer so the limits
// hold for the whole image.
struct LayerProgress {
  uint64_t bytes = 0;
  uint64_t entries = 0;
};

// Unpacks `archive` into the folder open as `root_fd`, applying OCI whiteouts. Every path is
// resolved one component at a time beneath root_fd with no symlink followed, so neither a
// symlink from an earlier layer, an absolute name, `..`, nor a hard link can reach outside.
// Regular files, folders, symlinks and hard links to files already inside are created;
// devices, fifos and sockets refuse the layer; setuid, setgid and sticky bits are dropped and
// owners are never applied. Fails with the entry's name on the first problem.
Status extract_layer(const std::filesystem::path& archive, int root_fd, const LayerLimits& limits,
                     LayerProgress& progress);

// The finished tree holds only folders, regular files and symlinks, with no setuid, setgid or
// sticky bit: checked before an image is moved into place, whoever wrote it.
Status check_extracted_tree(const std::filesystem::path& root);

}  // namespace dstackvmm::internal
