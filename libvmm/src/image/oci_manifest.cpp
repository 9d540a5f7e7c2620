// SPDX-License-Identifier: Apache-2.0
#include "image/oci_manifest.hpp"

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"

namespace dstackvmm::internal {

namespace {
Error bad(const std::string& why) { return make_error(ErrorCode::kInvalidArgument, "registry manifest: " + why); }

std::string string_at(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

bool valid_sha256_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<OciManifest> parse_oci_manifest(std::string_view body) {
  std::string why;
  nlohmann::json j = parse_json(body, {4u << 20, 16}, &why);
  if (j.is_discarded()) return bad(why);
  if (!j.is_object()) return bad("not a JSON object");
  OciManifest m;
  if (auto it = j.find("manifests"); it != j.end()) {  // an index: take linux/amd64
    if (!it->is_array()) return bad("\"manifests\" is not an array");
    for (const auto& e : *it) {
      if (!e.is_object()) continue;
      auto p = e.find("platform");
      if (p == e.end() || !p->is_object() || string_at(*p, "architecture") != "amd64") continue;
      std::string os = string_at(*p, "os");
      if (!os.empty() && os != "linux") continue;
      m.amd64_digest = string_at(e, "digest");
      if (!valid_sha256_digest(m.amd64_digest)) return bad("the linux/amd64 entry has no valid sha256 digest");
      return m;
    }
    return make_error(ErrorCode::kNotFound, "no linux/amd64 image in the index");
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array() || layers->empty()) return bad("manifest has no layers");
  if (layers->size() > kMaxOciLayers) return bad("more than " + std::to_string(kMaxOciLayers) + " layers");
  for (const auto& l : *layers) {
    if (!l.is_object()) return bad("a layer is not an object");
    OciLayer layer{string_at(l, "digest"), 0};
    if (!valid_sha256_digest(layer.digest)) return bad("unsupported layer digest " + layer.digest.substr(0, 80));
    auto size = l.find("size");
    if (size == l.end() || !size->is_number_unsigned()) return bad("layer " + layer.digest + " has no valid size");
    layer.size = size->get<uint64_t>();
    if (layer.size > (uint64_t{1} << 40) || m.total_size + layer.size < m.total_size) return bad("layer sizes overflow");
    m.total_size += layer.size;
    m.layers.push_back(std::move(layer));
  }
  return m;
}

}  // namespace dstackvmm::internal
