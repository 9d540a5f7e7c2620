// SPDX-License-Identifier: Apache-2.0
// Files the way state must be written: atomically (temp, fsync, rename, fsync dir).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// Replaces `path` with `data` so that a crash leaves either the old or the new content.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data,
                         mode_t mode = 0644);
// Replaces `path` with `data` by a rename, so readers see the old or the new content whole,
// but without syncing: for runtime state that is rebuilt after a crash (the CID registry),
// where a start must not wait for the disk.
Status replace_file(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644);
// Writes `data` (at most 512 bytes: one sector) over the start of `path` when the file has
// exactly that length already: one write into one page and one sector, no metadata changed,
// so a crash or a power cut leaves the old bytes or the new, as a rename would, at a fraction
// of its cost (ext4 flushes a file renamed over another, auto_da_alloc: ~0.2-0.9 ms here).
// kFailedPrecondition when the file is missing or of another length, and then it is untouched:
// the caller replaces it whole. Not synced.
Status overwrite_same_length(const std::filesystem::path& path, std::string_view data);
// Makes a file written by replace_file() durable: its content, then its name.
Status sync_file(const std::filesystem::path& path);
// Makes the data of a file written by overwrite_same_length() durable (fdatasync): nothing
// else about it changed that reading it back needs.
Status sync_data(const std::filesystem::path& path);
// Makes the names in the folder `dir` durable (the files made, renamed or removed in it).
Status sync_folder_entries(const std::filesystem::path& dir);
// Creates `path` empty if it is not there, without syncing: a marker whose order against the
// deletions after it the filesystem's journal keeps (metadata is committed in order), and
// whose loss in a power cut only undoes the request that made it.
Status create_marker(const std::filesystem::path& path);
// The marker `path` as a second name of the file `existing` (a hard link): no inode is made,
// which on ext4 after a burst of deletions is the dear part (its allocator walks the inodes
// recently freed). Where no link can be made (no such file, a filesystem without hard links),
// an empty file as create_marker().
Status link_marker(const std::filesystem::path& existing, const std::filesystem::path& path);
// How many fsyncs this process's file writes have made (tests count them for a burst).
uint64_t fsync_count();
// Several files replaced together, all or nothing as far as space and write errors go: every
// new content is written and synced to a temp file first, and only when all are staged are
// they renamed into place (a rename needs no space). Whatever is not committed is removed.
class FileBatch {
 public:
  FileBatch() = default;
  FileBatch(const FileBatch&) = delete;
  FileBatch& operator=(const FileBatch&) = delete;
  ~FileBatch();
  Status stage(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644);
  // Renames in staging order: stage the file that makes the change visible (a manifest) last.
  Status commit();

 private:
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> staged_;  // temp, target
};

Result<std::string> read_file(const std::filesystem::path& path);
// A small attribute file (sysfs, /proc) without surrounding whitespace; "" when it cannot be
// read. At most `max_bytes` are read, so a fake or hostile tree cannot make it large.
std::string read_attribute(const std::filesystem::path& path, size_t max_bytes = 4096);
// Removes a folder tree; a missing folder is fine.
Status remove_tree(const std::filesystem::path& path);
Status make_dirs(const std::filesystem::path& path);

// Where running daemons publish their discovery files (upstream's place):
// $XDG_RUNTIME_DIR/dstack-vmm, else /run/user/<uid>/dstack-vmm.
std::filesystem::path default_discovery_dir();

}  // namespace dstackvmm::internal
