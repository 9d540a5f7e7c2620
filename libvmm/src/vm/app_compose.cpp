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
bool is_hex(std::string_view s) {
  if (s.substr(0, 2) == "0x") s.remove_prefix(2);
  if (s.size() % 2) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
}  // namespace

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
