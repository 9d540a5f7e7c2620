// SPDX-License-Identifier: Apache-2.0
// What the VMM reads of app-compose.json and of a VM's name.
#include <optional>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "vm/app_compose.hpp"
#include "base/crypto.hpp"

namespace dstackvmm::internal {

using nlohmann::json;

namespace {
Error bad_compose(std::string why) {
  return make_error(ErrorCode::kInvalidArgument, "Invalid compose file: " + why);
}
bool is_hex(std::string_view s) {
  if (s.substr(0, 2) == "0x") s.remove_prefix(2);
  if (s.size() % 2) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

Status validate_compose(std::string_view compose) {
  json j = internal::parse_json(compose);
  if (j.is_discarded()) return bad_compose("not valid JSON");
  if (!j.is_object()) return bad_compose("not a JSON object");
  auto mv = j.find("manifest_version");
  if (mv == j.end()) return bad_compose("missing field `manifest_version`");
  bool mv_ok = (mv->is_number_unsigned() && (*mv == 1 || *mv == 2));
  if (mv->is_string()) {
    std::string s = *mv;
    mv_ok = !s.empty() && s[0] != '0' && s.size() < 10 &&
            s.find_first_not_of("0123456789") == std::string::npos;
  }
  if (!mv_ok) return bad_compose("invalid manifest_version " + mv->dump());
  for (const char* key : {"name", "runner"}) {
    auto it = j.find(key);
    if (it == j.end()) return bad_compose(std::string("missing field `") + key + "`");
    if (!it->is_string()) return bad_compose(std::string("`") + key + "` must be a string");
  }
  if (auto it = j.find("key_provider_id"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || !is_hex(it->get<std::string>()))
      return bad_compose("key_provider_id must be hex");
  }
  if (auto it = j.find("verity_volumes"); it != j.end() && !it->is_null() && !(it->is_array() && it->empty()))
    return bad_compose("verity_volumes need [cvm] volumes_dir, which this daemon does not support yet; "
                       "remove verity_volumes from the compose");
  if (auto it = j.find("init_script"); it != j.end() && !it->is_null()) {
    bool ok = it->is_string() || (it->is_array() && it->size() <= 5);
    if (it->is_array())
      for (const auto& s : *it) ok = ok && s.is_string();
    if (!ok) return bad_compose("init_script must be a string or at most 5 strings");
  }
  return {};
}

std::optional<bool> compose_tdx_measure_acpi_tables(std::string_view compose) {
  json j = internal::parse_json(compose);
  if (!j.is_object()) return std::nullopt;
  auto req = j.find("requirements");
  if (req == j.end() || !req->is_object()) return std::nullopt;
  auto v = req->find("tdx_measure_acpi_tables");
  if (v == req->end() || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::string resolve_tdx_attestation_variant(std::string_view configured, bool tdx_tee, std::optional<bool> measure_acpi_tables,
                                            uint32_t memory_mb, bool image_has_tdx_material) {
  if (!tdx_tee) return "legacy";
  if (measure_acpi_tables) return *measure_acpi_tables ? "legacy" : "lite";
  if (configured == "legacy" || configured == "lite") return std::string(configured);
  if (memory_mb < 3072 && memory_mb != 2048) return "legacy";
  return image_has_tdx_material ? "lite" : "legacy";
}

Status validate_vm_name(std::string_view name) {
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80;
    ok = ok || std::string_view("-_. @~!$^()").find(c) != std::string_view::npos;
    if (!ok) return make_error(ErrorCode::kInvalidArgument, "Invalid name: " + std::string(name));
  }
  return {};
}

bool compose_enables_gateway(std::string_view compose) {
  json j = internal::parse_json(compose);
  if (!j.is_object()) return false;
  auto flag = [&](const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); };
  if (flag("gateway_enabled") || flag("tproxy_enabled")) return true;
  if (auto f = j.find("features"); f != j.end() && f->is_array())
    for (const auto& x : *f)
      if (x == "tproxy-net") return true;
  return false;
}

std::optional<std::string> app_url(bool gateway_enabled, const std::optional<std::string>& instance_id,
                                   const std::vector<std::string>& vm_gateway_urls, const std::string& base_domain,
                                   uint32_t gateway_port, uint32_t agent_port) {
  if (!instance_id || !gateway_enabled) return std::nullopt;
  std::string host = base_domain;
  uint32_t port = gateway_port;
  if (!vm_gateway_urls.empty()) {  // the VM's own first gateway URL wins: host[:port], 443 by default
    std::string u = vm_gateway_urls.front();
    if (auto s = u.find("://"); s != std::string::npos) u = u.substr(s + 3);
    u = u.substr(0, u.find('/'));
    auto colon = u.rfind(':');
    host = u.substr(0, colon);
    port = colon == std::string::npos ? 443 : static_cast<uint32_t>(std::strtoul(u.c_str() + colon + 1, nullptr, 10));
  }
  std::string url = "https://" + *instance_id + "-" + std::to_string(agent_port) + "." + host;
  if (port != 443) url += ":" + std::to_string(port);
  return url;
}

Result<std::string> resolve_app_id(const std::optional<std::string>& given, std::string_view compose) {
  if (!given || given->empty()) return sha256_hex(compose).substr(0, 40);
  std::string id = *given;
  if (id.rfind("0x", 0) == 0) id = id.substr(2);
  for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (id.size() != 40 || !is_hex(id))
    return make_error(ErrorCode::kInvalidArgument, "Invalid app_id: " + *given + " (expected 40 hex characters)");
  return id;
}

}  // namespace dstackvmm::internal
