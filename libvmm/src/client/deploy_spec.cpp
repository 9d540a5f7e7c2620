// SPDX-License-Identifier: Apache-2.0
#include <dstackvmm/client/deploy_spec.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include <dstackvmm/listen_address.hpp>

#include "base/crypto.hpp"
#include "base/json_limits.hpp"

namespace dstackvmm::client {

namespace {

Error bad(std::string_view what, std::string_view text, std::string_view how) {
  return make_error(ErrorCode::kInvalidArgument, std::string(what) + " '" + std::string(text) + "': " + std::string(how));
}

// "1.5G" -> 1.5 and "G"; the number part is digits with at most one '.'.
bool split_size(std::string_view text, double& number, std::string& unit) {
  size_t i = 0;
  bool dot = false, digit = false;
  for (; i < text.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      digit = true;
    } else if (text[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digit || i > 32) return false;
  number = std::strtod(std::string(text.substr(0, i)).c_str(), nullptr);
  unit.clear();
  for (char c : text.substr(i)) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return true;
}

Result<uint32_t> scaled(std::string_view what, std::string_view text, double value, const char* whole) {
  if (value > 4294967295.0) return bad(what, text, "too large");
  if (std::floor(value) != value) return bad(what, text, std::string("is not a whole number of ") + whole);
  return static_cast<uint32_t>(value);
}

Result<uint32_t> parse_port_number(std::string_view what, std::string_view text, std::string_view spec) {
  if (text.empty() || text.size() > 5) return bad("port spec", spec, std::string(what) + " must be a number from 1 to 65535");
  uint32_t n = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return bad("port spec", spec, std::string(what) + " must be a number from 1 to 65535");
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return bad("port spec", spec, std::string(what) + " must be a number from 1 to 65535");
  return n;
}

}  // namespace

Result<uint32_t> parse_memory_mb(std::string_view text) {
  double n = 0;
  std::string unit;
  if (!split_size(text, n, unit)) return bad("memory size", text, "expected a number with an optional unit, like 512M, 2G or 1.5G");
  if (unit.empty() || unit == "M" || unit == "MB") return scaled("memory size", text, n, "MB");
  if (unit == "G" || unit == "GB") return scaled("memory size", text, n * 1024, "MB");
  if (unit == "T" || unit == "TB") return scaled("memory size", text, n * 1024 * 1024, "MB");
  return bad("memory size", text, "unknown unit '" + unit + "' (use M, MB, G, GB, T or TB)");
}

Result<uint32_t> parse_disk_gb(std::string_view text) {
  double n = 0;
  std::string unit;
  if (!split_size(text, n, unit)) return bad("disk size", text, "expected a number with an optional unit, like 20G or 1T");
  if (unit.empty() || unit == "G" || unit == "GB") return scaled("disk size", text, n, "GB");
  if (unit == "T" || unit == "TB") return scaled("disk size", text, n * 1024, "GB");
  return bad("disk size", text, "unknown unit '" + unit + "' (use G, GB, T or TB)");
}

Result<PortMapping> parse_port_spec(std::string_view spec) {
  const char* form = "expected proto:host_port:vm_port or proto:address:host_port:vm_port, like tcp:8080:80";
  size_t first = spec.find(':');
  size_t last = spec.rfind(':');
  if (first == std::string_view::npos || first == last) return bad("port spec", spec, form);
  size_t middle = spec.rfind(':', last - 1);
  PortMapping p;
  p.protocol = std::string(spec.substr(0, first));
  if (p.protocol != "tcp" && p.protocol != "udp") return bad("port spec", spec, "the protocol must be tcp or udp");
  p.address = middle == first ? "127.0.0.1" : std::string(spec.substr(first + 1, middle - first - 1));
  if (p.address.size() > 2 && p.address.front() == '[' && p.address.back() == ']') p.address = p.address.substr(1, p.address.size() - 2);
  if (!is_ip_address(p.address)) return bad("port spec", spec, "'" + p.address + "' is not an IP address");
  auto host = parse_port_number("the host port", spec.substr(middle + 1, last - middle - 1), spec);
  if (!host.ok()) return host.error();
  auto vm = parse_port_number("the VM port", spec.substr(last + 1), spec);
  if (!vm.ok()) return vm.error();
  p.host_port = *host;
  p.vm_port = *vm;
  return p;
}

std::string format_port_spec(const PortMapping& p) {
  bool v6 = p.address.find(':') != std::string::npos;
  return p.protocol + ":" + (v6 ? "[" + p.address + "]" : p.address) + ":" + std::to_string(p.host_port) + ":" +
         std::to_string(p.vm_port);
}

Result<std::string> build_app_compose(const ComposeOptions& o) {
  if (o.key_provider && *o.key_provider != "none" && *o.key_provider != "kms" && *o.key_provider != "local" &&
      *o.key_provider != "tpm")
    return bad("key provider", *o.key_provider, "use none, kms, local or tpm");
  // The VMM (ours and upstream's) reads it as plain hex: anything else makes the compose
  // unloadable, so it is refused here rather than at deploy.
  bool hex = o.key_provider_id.size() % 2 == 0;
  for (char ch : o.key_provider_id) hex = hex && std::isxdigit(static_cast<unsigned char>(ch));
  if (!hex) return bad("key provider id", o.key_provider_id, "use hex digits (an even number, without 0x)");
  if (o.event_log_version != 1 && o.event_log_version != 2)
    return bad("event log version", std::to_string(o.event_log_version), "use 1 or 2");
  // ordered_json keeps insertion order: §9's key order is part of what the file is.
  nlohmann::ordered_json c;
  c["manifest_version"] = 2;
  c["name"] = o.name;
  c["runner"] = "docker-compose";
  c["docker_compose_file"] = o.docker_compose_file;
  c["kms_enabled"] = o.kms;
  c["gateway_enabled"] = o.gateway;
  c["local_key_provider_enabled"] = o.local_key_provider;
  c["key_provider_id"] = o.key_provider_id;
  c["public_logs"] = o.public_logs;
  c["public_sysinfo"] = o.public_sysinfo;
  c["allowed_envs"] = o.allowed_envs;
  c["no_instance_id"] = o.no_instance_id;
  c["secure_time"] = o.secure_time;
  if (o.key_provider) c["key_provider"] = *o.key_provider;
  if (o.pre_launch_script) c["pre_launch_script"] = *o.pre_launch_script;
  if (o.swap_bytes > 0) c["swap_size"] = o.swap_bytes;
  if (o.event_log_version == 2) c["event_log_version"] = 2;
  return c.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<GpuRequest> gpu_request(const std::vector<std::string>& slots, bool all_gpus) {
  if (all_gpus || std::find(slots.begin(), slots.end(), "all") != slots.end()) return GpuRequest{"all", {}};
  if (slots.empty()) return std::nullopt;
  return GpuRequest{"listed", slots};
}

Result<std::string> compose_with_env(std::string_view compose, const std::vector<EnvVar>& env) {
  internal::JsonLimits limits;
  if (compose.size() > limits.max_bytes || internal::json_depth(compose, limits.max_depth + 1) > limits.max_depth)
    return make_error(ErrorCode::kInvalidArgument, "the app compose is too large or nested too deep");
  auto j = nlohmann::ordered_json::parse(compose, nullptr, false);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "the app compose is not a JSON object (an app-compose.json)");
  nlohmann::ordered_json keys = nlohmann::ordered_json::array();
  for (const auto& e : env) keys.push_back(e.key);
  bool changed = !j.contains("allowed_envs") || j["allowed_envs"] != keys;
  j["allowed_envs"] = keys;
  for (const auto& e : env)
    if (e.key == "APP_LAUNCH_TOKEN") {
      std::string h = sha256_hex(e.value);
      changed = changed || !j.contains("launch_token_hash") || j["launch_token_hash"] != h;
      j["launch_token_hash"] = h;
    }
  return changed ? j.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace) : std::string();
}

std::string sha256_hex(std::string_view text) { return internal::sha256_hex(text); }

}  // namespace dstackvmm::client
