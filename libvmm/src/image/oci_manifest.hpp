// SPDX-License-Identifier: Apache-2.0
// OCI image manifests and indexes as a registry sends them: checked field by field, never
// trusted to have the shape they should (a layer "size" that is a string must not throw on
// a worker thread and take the daemon down).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct OciLayer {
  std::string digest;  // "sha256:" + 64 lowercase hex
  uint64_t size = 0;
};

struct OciManifest {
  // Set when the document is an index: the linux/amd64 manifest to fetch next.
  std::string amd64_digest;
  std::vector<OciLayer> layers;  // set when it is an image manifest
  uint64_t total_size = 0;
};

constexpr size_t kMaxOciLayers = 1000;

bool valid_sha256_digest(std::string_view digest);
Result<OciManifest> parse_oci_manifest(std::string_view body);

}  // namespace dstackvmm::internal
