// SPDX-License-Identifier: Apache-2.0
// MrConfig V1/V3 (mr_config.hpp) and a start's V3 document (mr_config_plan.hpp).
#include "tee/mr_config_plan.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/json_limits.hpp"
#include "base/text_util.hpp"
#include "tee/canonical_json.hpp"

namespace dstackvmm {

using nlohmann::json;

namespace {

Error bad_document(std::string why) {
  return make_error(ErrorCode::kInvalidArgument, "failed to parse mr_config document: " + why);
}

// Upstream's hex: lowercase or uppercase digits, even length, no 0x.
std::optional<std::string> plain_hex(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (starts_with(s, "0x") || starts_with(s, "0X")) return std::nullopt;
  return from_hex(s);
}

}  // namespace

std::string mr_config_document(const MrConfigV3& c) {
  json j = json::object();
  if (c.app_id) j["app_id"] = to_hex(*c.app_id);
  j["compose_hash"] = to_hex(c.compose_hash);
  if (c.gpu_policy_hash) j["gpu_policy_hash"] = to_hex(*c.gpu_policy_hash);
  if (c.init_script_hashes) {
    j["init_script_hashes"] = json::array();
    for (const auto& h : *c.init_script_hashes) j["init_script_hashes"].push_back(to_hex(h));
  }
  if (c.instance_id) j["instance_id"] = to_hex(*c.instance_id);
  j["key_provider"] = c.key_provider;
  if (c.key_provider_id) j["key_provider_id"] = to_hex(*c.key_provider_id);
  j["version"] = c.version;
  return internal::canonical_json(j);
}

Result<MrConfigV3> parse_mr_config(std::string_view document) {
  std::string why;
  json j = internal::parse_json(document, {1 << 20, 8}, &why);
  if (j.is_discarded()) return bad_document(why);
  if (!j.is_object()) return bad_document("expected an object");
  static const std::set<std::string> kKeys{"app_id", "compose_hash", "gpu_policy_hash", "init_script_hashes",
                                           "instance_id", "key_provider", "key_provider_id", "version"};
  for (const auto& [k, _] : j.items())
    if (!kKeys.count(k)) return bad_document("unknown field `" + k + "`");
  MrConfigV3 c;
  auto bytes = [&](const char* key, std::optional<std::string>* out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    auto b = plain_hex(*it);
    if (!b) return bad_document(std::string("`") + key + "` is not hex");
    *out = *b;
    return {};
  };
  std::optional<std::string> compose_hash;
  for (auto [key, out] : {std::pair{"app_id", &c.app_id}, std::pair{"compose_hash", &compose_hash},
                          std::pair{"gpu_policy_hash", &c.gpu_policy_hash}, std::pair{"instance_id", &c.instance_id},
                          std::pair{"key_provider_id", &c.key_provider_id}})
    if (auto s = bytes(key, out); !s.ok()) return s.error();
  if (!compose_hash) return bad_document("missing field `compose_hash`");
  c.compose_hash = *compose_hash;
  auto kp = j.find("key_provider");
  if (kp == j.end()) return bad_document("missing field `key_provider`");
  if (!(kp->is_string() && (*kp == "none" || *kp == "kms" || *kp == "local" || *kp == "tpm")))
    return bad_document("unknown key_provider " + kp->dump() + ", expected none, kms, local or tpm");
  c.key_provider = kp->get<std::string>();
  if (auto it = j.find("init_script_hashes"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad_document("`init_script_hashes` must be a list");
    if (it->size() > 5) return bad_document("init_script_hashes supports at most 5 hashes");
    c.init_script_hashes.emplace();
    for (const auto& h : *it) {
      auto b = plain_hex(h);
      if (!b) return bad_document("an init_script_hash is not hex");
      if (b->size() != 32) return bad_document("each init_script_hash must be 32 bytes");
      c.init_script_hashes->push_back(*b);
    }
  }
  if (auto it = j.find("version"); it != j.end() && !it->is_null()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() > 255) return bad_document("`version` must be 0-255");
    c.version = it->get<uint32_t>();
  }
  return c;
}

std::string mr_config_v3_digest(std::string_view document) {
  std::string input = "dstack-mr-config-v3:";
  input += '\0';
  input += document;
  return internal::sha256(input);
}

std::string snp_host_data(std::string_view document) { return internal::base64(mr_config_v3_digest(document)); }

std::string tdx_mr_config_id_v3(std::string_view document) {
  return internal::base64(std::string(1, '\x03') + mr_config_v3_digest(document) + std::string(15, '\0'));
}

std::string mrconfigid_v1(std::string_view compose_bytes) {
  return internal::base64(std::string(1, '\x01') + internal::sha256(compose_bytes) + std::string(15, '\0'));
}

namespace internal {

Result<MrConfigVersion> select_mr_config_version(bool no_tee, const std::optional<std::string>& simulated_tee,
                                                 Platform platform, bool use_mrconfigid, bool has_key_provider_id) {
  if (simulated_tee && *simulated_tee == "dstack-amd-sev-snp") return MrConfigVersion::kV3;
  if (no_tee || platform == Platform::kNone) return MrConfigVersion::kNone;
  if (platform == Platform::kAmdSevSnp) return MrConfigVersion::kV3;
  if (has_key_provider_id && !use_mrconfigid)
    return make_error(ErrorCode::kFailedPrecondition,
                      "key provider ID requires MrConfigV3, but use_mrconfigid is disabled ([cvm] use_mrconfigid = false); "
                      "enable it, or remove key_provider_id from the compose");
  if (!use_mrconfigid) return MrConfigVersion::kNone;
  return has_key_provider_id ? MrConfigVersion::kV3 : MrConfigVersion::kV1;
}

Result<InstanceInfo> parse_instance_info(std::string_view text) {
  auto bad = [](std::string why) { return make_error(ErrorCode::kInvalidArgument, "failed to get instance info: " + why); };
  std::string why;
  json j = parse_json(text, {1 << 20, 8}, &why);
  if (j.is_discarded()) return bad(why);
  if (!j.is_object()) return bad("expected an object");
  InstanceInfo info;
  for (auto [key, out] : {std::pair{"instance_id_seed", &info.instance_id_seed}, std::pair{"instance_id", &info.instance_id},
                          std::pair{"app_id", &info.app_id}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    auto b = plain_hex(*it);
    if (!b) return bad(std::string("`") + key + "` is not hex");
    *out = *b;
  }
  return info;
}

std::string instance_info_json(const InstanceInfo& info) {
  nlohmann::ordered_json j;
  j["instance_id_seed"] = to_hex(info.instance_id_seed);
  j["instance_id"] = to_hex(info.instance_id);
  j["app_id"] = to_hex(info.app_id);
  return compact_json(j);
}

Result<MrConfigV3Plan> prepare_mr_config_v3(std::string_view compose_bytes, const ComposeFacts& compose,
                                            const std::optional<std::string>& instance_info, bool has_gpus,
                                            const std::function<std::string(size_t)>& random) {
  InstanceInfo info;
  if (instance_info) {
    auto parsed = parse_instance_info(*instance_info);
    if (!parsed.ok()) return parsed.error();
    info = *parsed;
  }
  std::string compose_hash = sha256(compose_bytes);
  if (info.app_id.empty()) info.app_id = compose_hash.substr(0, 20);
  if (info.app_id.size() != 20)
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid app ID length: expected 20 bytes, got " + std::to_string(info.app_id.size()));
  if (compose.key_provider == "none" || info.instance_id_seed.empty()) info.instance_id_seed = random(20);
  info.instance_id = compose.no_instance_id ? "" : sha256(info.instance_id_seed + info.app_id).substr(0, 20);

  MrConfigV3 c;
  c.app_id = info.app_id;
  c.compose_hash = compose_hash;
  if (has_gpus) c.gpu_policy_hash = sha256(canonical_json(compose.gpu_policy));
  if (compose.manifest_version_number && *compose.manifest_version_number >= 3) {
    c.init_script_hashes.emplace();
    for (const auto& script : compose.init_scripts) c.init_script_hashes->push_back(sha256(script));
  }
  if (!compose.no_instance_id) c.instance_id = info.instance_id;
  c.key_provider = compose.key_provider;
  if (!compose.key_provider_id.empty()) c.key_provider_id = compose.key_provider_id;
  return MrConfigV3Plan{mr_config_document(c), instance_info_json(info)};
}

}  // namespace internal
}  // namespace dstackvmm
