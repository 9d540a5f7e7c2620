// SPDX-License-Identifier: Apache-2.0
// Verity volumes (verity_volumes.hpp).
#include "tee/verity_volumes.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include <dstackvmm/log.hpp>

namespace dstackvmm::internal {

namespace fs = std::filesystem;

namespace {

Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

Result<std::string> resolve_source(const fs::path& dir, const std::string& source) {
  if (source.empty()) return invalid("invalid volume source: empty path");
  fs::path p(source);
  if (source.find('/') != std::string::npos || source == "." || source == ".." || p.has_root_path())
    return invalid("invalid volume source '" + source + "': must be a bare file name");
  std::error_code ec;
  fs::path real = fs::canonical(dir / p, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "volume '" + source + "' in " + dir.string() + ": " + ec.message());
  auto [d, r] = std::mismatch(dir.begin(), dir.end(), real.begin(), real.end());
  if (d != dir.end() || r == real.end()) return invalid("volume '" + source + "' escapes volumes_dir");
  if (real.string().find_first_of(",=") != std::string::npos)
    return invalid("volume '" + source + "' resolves to a path with ',' or '='");
  return real.string();
}

}  // namespace

Result<std::vector<std::string>> resolve_verity_volumes(const std::vector<VerityVolumeRequest>& requested,
                                                        const std::string& volumes_dir) {
  std::vector<std::string> out;
  if (requested.empty()) return out;
  std::string trimmed = volumes_dir;
  trimmed.erase(0, std::min(trimmed.size(), trimmed.find_first_not_of(" \t")));
  trimmed.erase(trimmed.find_last_not_of(" \t") + 1);
  if (trimmed.empty())
    return invalid("volumes requested but cvm.volumes_dir is not configured (set [cvm] volumes_dir to the folder of the "
                   "volume files, or remove verity_volumes from the compose)");
  std::error_code ec;
  fs::path dir = fs::canonical(trimmed, ec);
  if (ec) return make_error(ErrorCode::kFailedPrecondition, "cvm.volumes_dir " + trimmed + ": " + ec.message());
  std::set<std::string> roots;
  for (const auto& v : requested) {
    if (!roots.insert(v.verity_root).second) {
      log_message(LogLevel::kWarn, "vmm", "not attaching duplicate verity root of volume '" + v.source + "' (target " + v.target + ")");
      continue;
    }
    auto path = resolve_source(dir, v.source);
    if (!path.ok()) return path.error();
    out.push_back(*path);
  }
  return out;
}

}  // namespace dstackvmm::internal
