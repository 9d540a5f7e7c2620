// SPDX-License-Identifier: Apache-2.0
// prpc JSON <-> library types.
#include "wire/json_codec.hpp"

#include <cctype>

#include "base/text_util.hpp"

namespace dstackvmm::wire {

namespace {

[[noreturn]] void bad(const char* key, const std::string& why) {
  throw DecodeError(std::string("field `") + key + "`: " + why);
}

const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// GET parameters arrive as strings; numbers and booleans inside them are accepted.
bool as_u32(const json& v, uint32_t& out) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= 0xffffffffull) {
    out = static_cast<uint32_t>(v.get<uint64_t>());
    return true;
  }
  if (v.is_string()) {
    std::string s = v;
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    uint64_t n = std::stoull(s);
    if (n > 0xffffffffull) return false;
    out = static_cast<uint32_t>(n);
    return true;
  }
  return false;
}

bool as_bool(const json& v, bool& out) {
  if (v.is_boolean()) {
    out = v;
    return true;
  }
  if (v.is_string() && (v == "true" || v == "false")) {
    out = v == "true";
    return true;
  }
  return false;
}

}  // namespace

std::string get_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return "";
  if (v->is_string()) return *v;
  if (v->is_number()) return v->dump();  // a GET id like "123"
  bad(key, "expected a string, got " + std::string(v->type_name()));
}

std::optional<std::string> get_opt_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_string(j, key);
}

uint32_t get_u32(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return 0;
  uint32_t out = 0;
  if (!as_u32(*v, out)) bad(key, "expected a u32, got " + v->dump());
  return out;
}

std::optional<uint32_t> get_opt_u32(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_u32(j, key);
}

bool get_bool(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return false;
  bool out = false;
  if (!as_bool(*v, out)) bad(key, "expected a boolean, got " + v->dump());
  return out;
}

std::optional<bool> get_opt_bool(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_bool(j, key);
}

std::vector<std::string> get_strings(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return {};
  if (!v->is_array()) bad(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) bad(key, "expected an array of strings");
    out.push_back(e);
  }
  return out;
}

std::string get_bytes(const json& j, const char* key) {
  std::string hex = get_string(j, key);
  auto out = from_hex(hex);
  if (!out) bad(key, hex.size() % 2 ? "odd number of hex digits" : "invalid hex string");
  return *out;
}

std::string hex_encode(std::string_view bytes) { return to_hex(bytes); }

std::vector<PortMapping> decode_ports(const json& j) {
  const json* v = field(j, "ports");
  std::vector<PortMapping> out;
  if (!v) return out;
  if (!v->is_array()) bad("ports", "expected an array");
  for (const auto& p : *v)
    out.push_back({get_string(p, "protocol"), get_string(p, "host_address"), get_u32(p, "host_port"), get_u32(p, "vm_port")});
  return out;
}

std::optional<GpuRequest> decode_gpus(const json& j) {
  const json* v = field(j, "gpus");
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_object()) bad("gpus", "expected a GpuConfig object");
  GpuRequest g;
  g.attach_mode = get_string(*v, "attach_mode");
  if (const json* list = field(*v, "gpus"); list && list->is_array())
    for (const auto& s : *list) g.slots.push_back(get_string(s, "slot"));
  return g;
}

namespace {
std::vector<NetworkSpec> decode_networks(const json& j, const char* key) {
  std::vector<NetworkSpec> out;
  const json* v = field(j, key);
  if (!v || v->is_null()) return out;
  auto one = [](const json& n) {
    NetworkSpec s;
    s.mode = get_string(n, "mode");
    s.bridge = get_string(n, "bridge_name");
    return s;
  };
  if (v->is_array())
    for (const auto& n : *v) out.push_back(one(n));
  else if (v->is_object())
    out.push_back(one(*v));
  else
    bad(key, "expected NetworkingConfig");
  return out;
}
json encode_network(const NetworkSpec& n) { return {{"mode", n.mode}, {"bridge_name", n.bridge}}; }
}  // namespace

VmConfiguration decode_vm_configuration(const json& j) {
  VmConfiguration c;
  c.name = get_string(j, "name");
  c.image = get_string(j, "image");
  c.compose_file = get_string(j, "compose_file");
  c.vcpu = get_u32(j, "vcpu");
  c.memory = get_u32(j, "memory");
  c.disk_size = get_u32(j, "disk_size");
  c.ports = decode_ports(j);
  c.encrypted_env = get_bytes(j, "encrypted_env");
  c.app_id = get_opt_string(j, "app_id");
  c.user_config = get_string(j, "user_config");
  c.hugepages = get_bool(j, "hugepages");
  c.pin_numa = get_bool(j, "pin_numa");
  c.gpus = decode_gpus(j);
  c.kms_urls = get_strings(j, "kms_urls");
  c.gateway_urls = get_strings(j, "gateway_urls");
  c.stopped = get_bool(j, "stopped");
  c.no_tee = get_bool(j, "no_tee");
  c.networks = decode_networks(j, "networks");
  if (c.networks.empty()) c.networks = decode_networks(j, "networking");  // legacy single network
  c.simulated_tee = get_opt_string(j, "simulated_tee");
  return c;
}

namespace {
json encode_ports(const std::vector<PortMapping>& list) {
  json ports = json::array();
  for (const auto& p : list)
    ports.push_back({{"protocol", p.protocol}, {"host_port", p.host_port}, {"vm_port", p.vm_port}, {"host_address", p.address}});
  return ports;
}
json encode_gpus(const std::optional<GpuRequest>& g) {
  if (!g) return nullptr;
  json slots = json::array();
  for (const auto& s : g->slots) slots.push_back({{"slot", s}});
  return {{"gpus", slots}, {"attach_mode", g->attach_mode}};
}
json encode_networks(const std::vector<NetworkSpec>& list) {
  json networks = json::array();
  for (const auto& n : list) networks.push_back(encode_network(n));
  return networks;
}
}  // namespace

json encode_vm_configuration(const VmConfiguration& c) {
  json ports = encode_ports(c.ports);
  json gpus = encode_gpus(c.gpus);
  json networks = encode_networks(c.networks);
  return {{"name", c.name},
          {"image", c.image},
          {"compose_file", c.compose_file},
          {"vcpu", c.vcpu},
          {"memory", c.memory},
          {"disk_size", c.disk_size},
          {"ports", ports},
          {"encrypted_env", hex_encode(c.encrypted_env)},
          {"app_id", c.app_id ? json(*c.app_id) : json()},
          {"user_config", c.user_config},
          {"hugepages", c.hugepages},
          {"pin_numa", c.pin_numa},
          {"gpus", gpus},
          {"kms_urls", c.kms_urls},
          {"gateway_urls", c.gateway_urls},
          {"stopped", c.stopped},
          {"no_tee", c.no_tee},
          {"networking", c.networks.empty() ? json() : encode_network(c.networks.front())},
          {"networks", networks},
          {"simulated_tee", c.simulated_tee ? json(*c.simulated_tee) : json()}};
}

VmUpdate decode_vm_update(const json& j) {
  VmUpdate u;
  u.id = get_string(j, "id");
  if (auto s = get_string(j, "compose_file"); !s.empty()) u.compose_file = s;
  if (auto s = get_bytes(j, "encrypted_env"); !s.empty()) u.encrypted_env = s;
  if (auto s = get_string(j, "user_config"); !s.empty()) u.user_config = s;
  if (get_bool(j, "update_ports")) u.ports = decode_ports(j);
  if (get_bool(j, "update_kms_urls")) u.kms_urls = get_strings(j, "kms_urls");
  if (get_bool(j, "update_gateway_urls")) u.gateway_urls = get_strings(j, "gateway_urls");
  u.gpus = decode_gpus(j);
  u.vcpu = get_opt_u32(j, "vcpu");
  u.memory = get_opt_u32(j, "memory");
  u.disk_size = get_opt_u32(j, "disk_size");
  u.image = get_opt_string(j, "image");
  u.no_tee = get_opt_bool(j, "no_tee");
  if (get_bool(j, "update_networking")) u.networks = decode_networks(j, "networks");
  return u;
}

json encode_vm_update(const VmUpdate& u) {
  json j{{"id", u.id}};
  if (u.compose_file) j["compose_file"] = *u.compose_file;
  if (u.encrypted_env) j["encrypted_env"] = hex_encode(*u.encrypted_env);
  if (u.user_config) j["user_config"] = *u.user_config;
  if (u.ports) j["update_ports"] = true, j["ports"] = encode_ports(*u.ports);
  if (u.kms_urls) j["update_kms_urls"] = true, j["kms_urls"] = *u.kms_urls;
  if (u.gateway_urls) j["update_gateway_urls"] = true, j["gateway_urls"] = *u.gateway_urls;
  if (u.gpus) j["gpus"] = encode_gpus(u.gpus);
  if (u.vcpu) j["vcpu"] = *u.vcpu;
  if (u.memory) j["memory"] = *u.memory;
  if (u.disk_size) j["disk_size"] = *u.disk_size;
  if (u.image) j["image"] = *u.image;
  if (u.no_tee) j["no_tee"] = *u.no_tee;
  if (u.networks) j["update_networking"] = true, j["networks"] = encode_networks(*u.networks);
  return j;
}

json encode_vm_info(const VmInfo& i, bool brief) {
  json events = json::array();
  for (const auto& e : i.events) events.push_back({{"event", e.event}, {"body", e.body}, {"timestamp", e.timestamp_ms}});
  json ifaces = json::array();
  for (const auto& n : i.interfaces)
    ifaces.push_back({{"mode", n.mode},
                      {"backend", n.backend},
                      {"mac", n.mac},
                      {"bridge_name", n.bridge_name ? json(*n.bridge_name) : json()},
                      {"netdev_id", n.netdev_id}});
  return {{"id", i.id},
          {"name", i.name},
          {"status", vm_status_name(i.status)},
          {"uptime", i.uptime},
          {"app_url", i.app_url ? json(*i.app_url) : json()},
          {"app_id", i.app_id},
          {"instance_id", i.instance_id ? json(*i.instance_id) : json()},
          {"configuration", brief ? json() : encode_vm_configuration(i.configuration)},
          {"exited_at", i.exited_at},
          {"boot_progress", i.boot_progress},
          {"boot_error", i.boot_error},
          {"shutdown_progress", i.shutdown_progress},
          {"image_version", i.image_version},
          {"events", std::move(events)},
          {"interfaces", std::move(ifaces)},
          // Ours, not in upstream's VmInfo (its clients ignore unknown fields):
          {"cid", i.cid},
          {"degraded", i.degraded ? json(*i.degraded) : json()}};
}

namespace {
std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out += ' ';
    else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

namespace {
std::string valid_utf8(const std::string& s) {
  json j = s;
  return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}
}  // namespace

json query_to_json(std::string_view query) {
  json out = json::object();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    // Percent-decoding can make any bytes; JSON strings must be UTF-8 (dump() would throw
    // on every later Status that shows them), so invalid sequences become U+FFFD.
    key = valid_utf8(key);
    value = valid_utf8(value);
    size_t bracket = key.find('[');
    if (bracket != std::string::npos && key.back() == ']') {  // ids[0]=a -> "ids": ["a"]
      std::string name = key.substr(0, bracket);
      if (!out[name].is_array()) out[name] = json::array();
      out[name].push_back(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

}  // namespace dstackvmm::wire
