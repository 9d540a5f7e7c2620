// SPDX-License-Identifier: Apache-2.0
// The discovery file upstream's vmm-cli reads (`vmm ls`/`vmm switch`): one JSON file per
// running daemon under $XDG_RUNTIME_DIR/dstack-vmm/ (fallback /run/user/<uid>/dstack-vmm/).
#pragma once


#include <filesystem>
#include <optional>
#include <string>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

struct DiscoveryInfo {
  std::string address;  // "unix:<path>" or "ip:port"
  std::string working_dir;
  std::optional<std::string> config_file;
  std::string image_path;
  std::string run_path;
  std::string node_name;
  std::string version;
};

std::filesystem::path default_discovery_dir();

// Where this host's daemons and one-shot runs share their CID registry (ManagerOptions::
// cid_registry): $DSTACK_VMM_CID_REGISTRY when set ("off": none), else /run/dstack-vmm/cids.json
// for root, else cids.json in the user's runtime folder beside the discovery files.
std::filesystem::path default_cid_registry();

// Writes <dir>/<uuid>.json (atomically) after removing files of dead daemons; removes it again
// on destruction. Move-only.
class DiscoveryFile {
 public:
  static Result<DiscoveryFile> publish(const std::filesystem::path& dir, const DiscoveryInfo& info);
  DiscoveryFile(DiscoveryFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  DiscoveryFile& operator=(DiscoveryFile&&) = delete;
  DiscoveryFile(const DiscoveryFile&) = delete;
  ~DiscoveryFile();
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit DiscoveryFile(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace dstackvmm
