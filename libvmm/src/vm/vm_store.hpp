// SPDX-License-Identifier: Apache-2.0
// A VM's workdir on disk: what is written at create and start, and read back for VmInfo.
// Layout is upstream's (docs/on-disk-layout.md); every write is atomic.
#pragma once

#include <optional>
#include <string>

#include <dstackvmm/config.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "vm/vm_paths.hpp"

namespace dstackvmm::internal {

// vm-runtime.json (ours; upstream ignores it): what must survive a daemon restart so the VM
// keeps its CID and agent port.
struct VmRuntime {
  uint32_t cid = 0;
  uint16_t agent_port = 0;
};

Status write_state(const VmPaths& paths, bool started);
// The same, visible at once but synced only by sync_state(): a stop records the user's intent
// before it acts (a daemon killed in between finds it) and makes it durable while QEMU exits.
// Written over the file in place where it can be (then only its data needs syncing), else
// replaced by a rename (then its folder too).
enum class StateWrite { kInPlace, kReplaced };
Result<StateWrite> write_state_unsynced(const VmPaths& paths, bool started);
Status sync_state(const VmPaths& paths, StateWrite how);
bool read_state(const VmPaths& paths);  // a missing file means not started, as upstream
Status write_runtime(const VmPaths& paths, const VmRuntime& runtime);
std::optional<VmRuntime> read_runtime(const VmPaths& paths);

// shared/ files, vm-state.json and, last, vm-manifest.json, none of them synced. The caller
// marks the folder (.creating) before and has finish_new_workdir() unmark it: the marker, not
// the manifest, tells start-up that a folder is a create that did not finish.
Status write_new_workdir(const VmPaths& paths, const VmManifest& manifest, const VmConfiguration& config);
// Makes what write_new_workdir() wrote durable, with the folder's own name in run_path, then
// removes the .creating marker, durably too. Eight fsyncs for the whole folder; a create
// that starts its VM does them while QEMU starts, off the path to the guest running.
Status finish_new_workdir(const VmPaths& paths);
Result<VmManifest> read_manifest(const VmPaths& paths);
Status write_manifest(const VmPaths& paths, const VmManifest& manifest);
// A VM's compose, env and user config, in files of their own (read_configuration_files);
// add_to() puts them in the configuration configuration_of() made from the manifest.
struct ConfigurationFiles {
  std::string compose_file, encrypted_env, user_config;
  size_t bytes() const { return compose_file.size() + encrypted_env.size() + user_config.size(); }
  void add_to(VmConfiguration* c) const;
};
ConfigurationFiles read_configuration_files(const VmPaths& paths);
std::optional<std::string> read_instance_id(const VmPaths& paths);

// Deletes a VM's folder, its .removing marker last: a kill in the middle leaves the marker
// (and the next start-up finishes the removal) or an empty folder (which start-up rmdirs),
// never files without the marker that would come back as a VM or be left for good.
Status remove_workdir(const VmPaths& paths);

// host_share_mode = "vhd": <workdir>/shared.img rebuilt from shared/ (atomically; needs mtools).
Status build_vhd_share(const VmPaths& paths);

}  // namespace dstackvmm::internal
