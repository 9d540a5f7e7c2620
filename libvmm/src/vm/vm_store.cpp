// SPDX-License-Identifier: Apache-2.0
// A VM's workdir on disk: what is written at create and start, and read back for VmInfo.
#include "base/json_limits.hpp"
#include "vm/vm_store.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fs_util.hpp"

namespace dstackvmm::internal {

using nlohmann::json;

namespace {
// Both texts have one length, so a stop's intent is written over the file in place rather than
// by a rename, which was ~0.7 ms of the path from StopVm to the kill (see
// overwrite_same_length). To a JSON reader the space is nothing.
std::string_view state_text(bool started) { return started ? R"({"started": true})" : R"({"started":false})"; }
}  // namespace

Status write_state(const VmPaths& paths, bool started) { return write_file_atomic(paths.state(), state_text(started)); }

Result<StateWrite> write_state_unsynced(const VmPaths& paths, bool started) {
  if (overwrite_same_length(paths.state(), state_text(started)).ok()) return StateWrite::kInPlace;
  // Missing, or written by another VMM.
  if (auto s = replace_file(paths.state(), state_text(started)); !s.ok()) return s.error();
  return StateWrite::kReplaced;
}

// In place, the length and the blocks unchanged: the data is all there is to sync (an fsync
// would also write the inode for the new mtime, which made it outlast QEMU's exit).
Status sync_state(const VmPaths& paths, StateWrite how) {
  return how == StateWrite::kInPlace ? sync_data(paths.state()) : sync_file(paths.state());
}

bool read_state(const VmPaths& paths) {
  auto text = read_file(paths.state());
  if (!text.ok()) return false;
  json j = internal::parse_json(*text);
  return j.is_object() && j.value("started", false);
}

Status write_runtime(const VmPaths& paths, const VmRuntime& r) {
  // For re-adoption by a restarted daemon (the page cache has it); a power cut ends the QEMU
  // it describes, and the next start writes it anew.
  return replace_file(paths.runtime(), json{{"cid", r.cid}, {"agent_port", r.agent_port}}.dump());
}

std::optional<VmRuntime> read_runtime(const VmPaths& paths) {
  auto text = read_file(paths.runtime());
  if (!text.ok()) return std::nullopt;
  json j = internal::parse_json(*text);
  if (!j.is_object()) return std::nullopt;
  return VmRuntime{j.value("cid", 0u), j.value<uint16_t>("agent_port", 0)};
}

Status write_new_workdir(const VmPaths& paths, const VmManifest& m, const VmConfiguration& c) {
  // Not synced one by one: the folder is marked as a create in progress until
  // finish_new_workdir() has made it all durable at once.
  if (auto s = make_dirs(paths.shared()); !s.ok()) return s;
  if (auto s = replace_file(paths.compose(), c.compose_file); !s.ok()) return s;
  if (!c.encrypted_env.empty())
    if (auto s = replace_file(paths.encrypted_env(), c.encrypted_env, 0600); !s.ok()) return s;
  if (!c.user_config.empty())
    if (auto s = replace_file(paths.user_config(), c.user_config); !s.ok()) return s;
  if (auto s = replace_file(paths.instance_info(), json{{"app_id", m.app_id}}.dump()); !s.ok()) return s;
  if (auto s = replace_file(paths.state(), state_text(!c.stopped)); !s.ok()) return s;
  return replace_file(paths.manifest(), manifest_to_json(m));
}

Status finish_new_workdir(const VmPaths& paths) {
  // New files: fdatasync writes a size with the data.
  for (const auto& file : {paths.compose(), paths.instance_info(), paths.state(), paths.manifest()})
    if (auto s = sync_data(file); !s.ok()) return s;
  std::error_code ec;
  for (const auto& file : {paths.encrypted_env(), paths.user_config()})  // written when given
    if (std::filesystem::exists(file, ec))
      if (auto s = sync_data(file); !s.ok()) return s;
  // The names: shared/'s files, the folder's files and shared/, and the folder in run_path.
  for (const auto& dir : {paths.shared(), paths.dir, paths.dir.parent_path()})
    if (auto s = sync_folder_entries(dir); !s.ok()) return s;
  if (::unlink(paths.creating_marker().c_str()) != 0)
    return make_error(ErrorCode::kIo, "cannot finish creating " + paths.dir.string() + ": " + std::strerror(errno));
  return sync_folder_entries(paths.dir);  // unmarked for good: a power cut keeps the VM
}

Result<VmManifest> read_manifest(const VmPaths& paths) {
  auto text = read_file(paths.manifest());
  if (!text.ok()) return text.error();
  return manifest_from_json(*text);
}

Status write_manifest(const VmPaths& paths, const VmManifest& m) {
  return write_file_atomic(paths.manifest(), manifest_to_json(m));
}

Status remove_workdir(const VmPaths& paths) {
  std::error_code ec;
  // Files are unlinked at once, by the type the listing gave (remove_all first tries to open
  // each name as a folder: one wasted call per file, ten per VM); folders (shared/) and
  // anything of unknown type go through remove_all, which never follows a symlink.
  std::vector<std::pair<std::filesystem::path, bool>> entries;  // (path, a plain file or link)
  for (const auto& entry : std::filesystem::directory_iterator(paths.dir, ec)) {
    if (entry.path() == paths.removing_marker()) continue;
    std::error_code type_ec;
    auto type = entry.symlink_status(type_ec).type();
    entries.emplace_back(entry.path(), !type_ec && type != std::filesystem::file_type::directory &&
                                           type != std::filesystem::file_type::unknown);
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    return make_error(ErrorCode::kIo, "cannot list " + paths.dir.string() + ": " + ec.message());
  for (const auto& [path, plain] : entries) {
    if (plain && (::unlink(path.c_str()) == 0 || errno == ENOENT)) continue;
    if (std::filesystem::remove_all(path, ec); ec) return make_error(ErrorCode::kIo, "cannot remove " + path.string() + ": " + ec.message());
  }
  std::filesystem::remove(paths.removing_marker(), ec);
  if (::rmdir(paths.dir.c_str()) != 0 && errno != ENOENT)
    return make_error(ErrorCode::kIo, "cannot remove " + paths.dir.string() + ": " + std::strerror(errno));
  return {};
}

ConfigurationFiles read_configuration_files(const VmPaths& paths) {
  return {read_file(paths.compose()).value_or(""), read_file(paths.encrypted_env()).value_or(""),
          read_file(paths.user_config()).value_or("")};
}

void ConfigurationFiles::add_to(VmConfiguration* c) const {
  c->compose_file = compose_file;
  c->encrypted_env = encrypted_env;
  c->user_config = user_config;
}

std::optional<std::string> read_instance_id(const VmPaths& paths) {
  auto text = read_file(paths.instance_info());
  if (!text.ok()) return std::nullopt;
  json j = internal::parse_json(*text);
  if (!j.is_object() || !j.contains("instance_id") || !j["instance_id"].is_string()) return std::nullopt;
  std::string id = j["instance_id"];
  if (id.find_first_not_of(" \t") == std::string::npos) return std::nullopt;
  return id;
}

}  // namespace dstackvmm::internal
