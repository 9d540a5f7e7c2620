// SPDX-License-Identifier: Apache-2.0
// Guest images from an OCI registry ([image] registry): list tags, pull one into [image] path.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

struct RegistryImage {
  std::string tag;
  bool local = false;    // an image folder dstack-<tag> exists
  bool pulling = false;
  std::string error;     // why the last pull failed ("" when it did not)
  uint64_t bytes_done = 0, bytes_total = 0;  // progress of a pull under way
};

// `registry` is upstream's form, `user/repo` (Docker Hub) or `host[:port]/repo`, plus ours:
// an explicit `http://` or `https://` prefix (plain HTTP for local registries). Thread-safe.
class DSTACKVMM_EXPORT ImageRegistry {
 public:
  // `max_unpacked_bytes` bounds what one image may unpack to ([image] max_unpacked_mb).
  ImageRegistry(std::string registry, std::filesystem::path image_dir, uint64_t max_unpacked_bytes = uint64_t{16} << 30);
  ~ImageRegistry();  // waits for pulls under way

  bool configured() const;
  // Tags (dropping `sha256-*` signature tags) with local and pull state.
  Result<std::vector<RegistryImage>> list();
  // Starts a background pull of `tag` into <image_dir>/dstack-<tag>: manifest, then each layer
  // with its size and sha256 checked while it streams, unpacked in-process into a private
  // .tmp-pull-<tag> folder with nothing able to leave it (no symlink followed, no absolute or
  // `..` path, no device, no setuid bit, sizes capped), then checked as an image (metadata.json,
  // every artefact a regular file inside) and renamed into place only when complete. Errors now:
  // "image registry is not configured", "image <tag> is already being pulled"; later ones are
  // shown in list() (e.g. "invalid registry tag", "digest mismatch for sha256:...").
  Status pull(const std::string& tag);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm
