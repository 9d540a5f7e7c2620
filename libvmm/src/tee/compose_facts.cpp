// SPDX-License-Identifier: Apache-2.0
// app-compose.json as a launch reads it (compose_facts.hpp); rules and messages as upstream's
// AppCompose (tee-launch.md §6).
#include "tee/compose_facts.hpp"

#include <set>

#include "base/json_limits.hpp"
#include "base/text_util.hpp"

namespace dstackvmm::internal {

using nlohmann::json;

namespace {

Error bad(std::string why) { return make_error(ErrorCode::kInvalidArgument, "Invalid compose file: " + why); }

bool plain_hex(std::string_view s) {
  if (s.size() % 2) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// A string "N" (canonical, > 0, fits u32; trimmed first) or a legacy number 1 or 2.
Result<std::string> manifest_version(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_integer() && v.get<int64_t>() < 0) return bad("manifest_version must be a positive integer");
    auto n = v.get<uint64_t>();
    if (n == 1 || n == 2) return std::to_string(n);
    return bad("numeric manifest_version is only supported for legacy versions 1 and 2; use a string for newer versions");
  }
  if (!v.is_string()) return bad("manifest_version: expected a string manifest version, or legacy numeric 1/2");
  std::string s = v.get<std::string>();
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  if (s.empty()) return bad("manifest_version must not be empty");
  if (!all_digits(s)) return bad("manifest_version must be a positive integer string, got \"" + s + "\"");
  if (s.size() > 10 || std::stoull(s) > UINT32_MAX) return bad("manifest_version must be a positive integer string, got \"" + s + "\"");
  if (std::stoull(s) == 0) return bad("manifest_version must be greater than 0");
  if (s[0] == '0') return bad("manifest_version must be a canonical integer string, got \"" + s + "\"");
  return s;
}

Status check_type(const json& j, const char* key, bool (json::*is)() const noexcept, const char* what, bool nullable = false) {
  auto it = j.find(key);
  if (it == j.end() || (nullable && it->is_null()) || ((*it).*is)()) return {};
  return bad(std::string("`") + key + "` must be " + what);
}

bool is_string_list(const json& v) {
  if (!v.is_array()) return false;
  for (const auto& s : v)
    if (!s.is_string()) return false;
  return true;
}

Status read_requirements(const json& req, ComposeFacts& f) {
  if (req.is_null()) return {};
  if (!req.is_object()) return bad("`requirements` must be an object");
  static const std::set<std::string> kKeys{"os_version", "platforms", "tdx_measure_acpi_tables", "launch_token_hash", "gpu_policy"};
  for (const auto& [k, _] : req.items())
    if (!kKeys.count(k)) return bad("requirements: unknown field `" + k + "`, expected one of os_version, platforms, "
                                    "tdx_measure_acpi_tables, launch_token_hash, gpu_policy");
  if (auto s = check_type(req, "os_version", &json::is_string, "a string", true); !s.ok()) return s;
  if (auto s = check_type(req, "launch_token_hash", &json::is_string, "a string", true); !s.ok()) return s;
  if (auto s = check_type(req, "tdx_measure_acpi_tables", &json::is_boolean, "true or false", true); !s.ok()) return s;
  if (auto it = req.find("platforms"); it != req.end() && !it->is_null() && !is_string_list(*it))
    return bad("`requirements.platforms` must be a list of strings");
  if (auto it = req.find("tdx_measure_acpi_tables"); it != req.end() && it->is_boolean()) f.tdx_measure_acpi_tables = it->get<bool>();
  if (auto it = req.find("gpu_policy"); it != req.end() && !it->is_null()) {
    if (!it->is_object()) return bad("`requirements.gpu_policy` must be an object");
    static const std::set<std::string> kPolicy{"attest_gpu", "rego", "allow_devtools", "allow_debug", "allow_insecure_boot"};
    for (const auto& [k, v] : it->items()) {
      if (!kPolicy.count(k)) return bad("requirements.gpu_policy: unknown field `" + k + "`, expected one of attest_gpu, rego, "
                                        "allow_devtools, allow_debug, allow_insecure_boot");
      if (k == "rego" ? !(v.is_string() || v.is_null()) : !v.is_boolean())
        return bad("`requirements.gpu_policy." + k + "` must be " + (k == "rego" ? "a string" : "true or false"));
    }
    f.gpu_policy = *it;  // hashed as written (explicit defaults are measured)
  }
  return {};
}

Status read_verity_volumes(const json& list, ComposeFacts& f) {
  if (list.is_null()) return {};
  auto invalid = [](std::string why) { return bad("invalid verity_volumes in app-compose: " + why); };
  if (!list.is_array()) return invalid("expected a list of {source, verity_root, target}");
  std::set<std::string> targets;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& v = list[i];
    std::string at = "entry " + std::to_string(i) + ": ";
    if (!v.is_object()) return invalid(at + "expected an object {source, verity_root, target}");
    for (const char* key : {"source", "verity_root", "target"})
      if (!v.contains(key) || !v[key].is_string()) return invalid(at + "missing field `" + key + "` (a string)");
    auto root = from_hex(v["verity_root"].get<std::string>());
    if (!root || starts_with(v["verity_root"].get<std::string>(), "0x")) return invalid(at + "verity_root is not hex");
    if (root->size() != 32)
      return invalid(at + "invalid array length " + std::to_string(root->size()) + ", expected verity_root of 32 bytes (64 hex digits)");
    std::string target = v["target"];
    if (target.empty() || target[0] != '/') return invalid(at + "volume target must be an absolute path, got '" + target + "'");
    if (!targets.insert(target).second) return bad("duplicate verity volume target " + target);
    f.verity_volumes.push_back({v["source"].get<std::string>(), *root, target});
  }
  return {};
}

}  // namespace

Result<ComposeFacts> read_compose(std::string_view compose) {
  json j = parse_json(compose);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object()) return bad("not a JSON object");
  ComposeFacts f;
  auto mv = j.find("manifest_version");
  if (mv == j.end()) return bad("missing field `manifest_version`");
  auto version = manifest_version(*mv);
  if (!version.ok()) return version.error();
  f.manifest_version = *version;
  f.manifest_version_number = static_cast<uint32_t>(std::stoul(*version));
  for (const char* key : {"name", "runner"}) {
    auto it = j.find(key);
    if (it == j.end()) return bad(std::string("missing field `") + key + "`");
    if (!it->is_string()) return bad(std::string("`") + key + "` must be a string");
  }
  for (const char* key : {"public_logs", "public_sysinfo", "public_tcbinfo", "kms_enabled", "gateway_enabled", "tproxy_enabled",
                          "local_key_provider_enabled", "no_instance_id", "secure_time"})
    if (auto s = check_type(j, key, &json::is_boolean, "true or false"); !s.ok()) return s.error();
  for (const char* key : {"docker_compose_file", "storage_fs"})
    if (auto s = check_type(j, key, &json::is_string, "a string", true); !s.ok()) return s.error();
  for (const char* key : {"features", "allowed_envs"})
    if (auto it = j.find(key); it != j.end() && !is_string_list(*it)) return bad(std::string("`") + key + "` must be a list of strings");

  auto provider = key_provider_from_compose(compose);
  if (!provider.ok()) return bad(provider.error().message);
  f.key_provider = *provider;
  if (auto it = j.find("key_provider_id"); it != j.end() && !it->is_null()) {
    std::string hex = it->is_string() ? it->get<std::string>() : "";
    if (!it->is_string() || !plain_hex(hex))
      return bad("key_provider_id must be hex (an even number of 0-9a-f digits, without 0x)");
    f.key_provider_id = *from_hex(hex);
  }
  f.no_instance_id = j.value("no_instance_id", false);
  if (auto it = j.find("init_script"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      f.init_scripts.push_back(it->get<std::string>());
    } else if (is_string_list(*it)) {
      if (it->size() > 5) return bad("init_script supports at most 5 scripts");
      f.init_scripts = it->get<std::vector<std::string>>();
    } else {
      return bad("init_script must be a string or a list of at most 5 strings");
    }
  }
  if (auto it = j.find("requirements"); it != j.end())
    if (auto s = read_requirements(*it, f); !s.ok()) return s.error();
  if (auto it = j.find("verity_volumes"); it != j.end())
    if (auto s = read_verity_volumes(*it, f); !s.ok()) return s.error();
  return f;
}

Result<std::string> key_provider_from_compose(std::string_view compose) {
  json j = parse_json(compose);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "invalid app compose JSON");
  if (auto it = j.find("key_provider"); it != j.end() && !it->is_null()) {
    if (it->is_string())
      for (const char* kind : {"none", "kms", "local", "tpm"})
        if (*it == kind) return std::string(kind);
    return make_error(ErrorCode::kInvalidArgument, "invalid key_provider " + it->dump() + " (none, kms, local or tpm)");
  }
  auto flag = [&](const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); };
  if (flag("kms_enabled")) return std::string("kms");
  if (flag("local_key_provider_enabled")) return std::string("local");
  return std::string("none");
}

bool needs_swtpm(std::string_view key_provider, const std::optional<std::string>& simulated_tee) {
  bool platform_tpm = simulated_tee && (*simulated_tee == "dstack-gcp-tdx" || *simulated_tee == "dstack-aws-nitro-tpm");
  return key_provider == "tpm" && !platform_tpm;
}

std::string resolve_tdx_attestation_variant(std::string_view configured, bool tdx_tee, std::optional<bool> measure_acpi_tables,
                                            uint32_t memory_mb, bool image_supports_lite) {
  if (!tdx_tee) return "legacy";
  if (measure_acpi_tables) return *measure_acpi_tables ? "legacy" : "lite";
  if (configured == "legacy" || configured == "lite") return std::string(configured);
  if (memory_mb < 3072 && memory_mb != 2048) return "legacy";
  return image_supports_lite ? "lite" : "legacy";
}

}  // namespace dstackvmm::internal
