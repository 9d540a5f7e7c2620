// SPDX-License-Identifier: Apache-2.0
// vm-manifest.json in upstream's format.
#include <dstackvmm/manifest.hpp>

#include <nlohmann/json.hpp>
#include "base/json_limits.hpp"

namespace dstackvmm {

using nlohmann::json;

namespace {

json network_json(const NetworkSpec& n) {
  return json{{"mode", n.mode},       {"bridge", n.bridge},         {"mac_prefix", n.mac_prefix},
              {"net", n.net},         {"dhcp_start", n.dhcp_start}, {"restrict", n.restrict},
              {"netdev", n.netdev}};
}

NetworkSpec network_from(const json& j) {
  NetworkSpec n;
  n.mode = j.value("mode", std::string("user"));
  n.bridge = j.value("bridge", std::string());
  n.mac_prefix = j.value("mac_prefix", std::string());
  n.net = j.value("net", std::string());
  n.dhcp_start = j.value("dhcp_start", std::string());
  n.restrict = j.value("restrict", false);
  n.netdev = j.value("netdev", std::string());
  return n;
}

json slots(const std::vector<std::string>& v) {
  json a = json::array();
  for (const auto& s : v) a.push_back({{"slot", s}});
  return a;
}

std::vector<std::string> slots_from(const json& j, const char* key) {
  std::vector<std::string> out;
  if (auto it = j.find(key); it != j.end() && it->is_array())
    for (const auto& e : *it) out.push_back(e.at("slot").get<std::string>());
  return out;
}

}  // namespace

std::string manifest_to_json(const VmManifest& m) {
  json ports = json::array();
  for (const auto& p : m.port_map)
    ports.push_back({{"address", p.address}, {"protocol", p.protocol}, {"from", p.host_port}, {"to", p.vm_port}});
  json j{{"id", m.id},
         {"name", m.name},
         {"app_id", m.app_id},
         {"vcpu", m.vcpu},
         {"memory", m.memory},
         {"disk_size", m.disk_size},
         {"image", m.image},
         {"port_map", ports},
         {"created_at_ms", m.created_at_ms},
         {"hugepages", m.hugepages},
         {"pin_numa", m.pin_numa},
         {"kms_urls", m.kms_urls},
         {"gateway_urls", m.gateway_urls},
         {"no_tee", m.no_tee},
         {"swtpm", m.swtpm}};
  if (m.gpus)
    j["gpus"] = {{"attach_mode", m.gpus->attach_mode}, {"gpus", slots(m.gpus->gpus)}, {"bridges", slots(m.gpus->bridges)}};
  if (m.simulated_tee) j["simulated_tee"] = *m.simulated_tee;
  if (!m.networks.empty()) {
    json nets = json::array();
    for (const auto& n : m.networks) nets.push_back(network_json(n));
    j["networks"] = nets;
    j["networking"] = network_json(m.networks.front());
  }
  json vols = json::array();
  for (const auto& v : m.volumes) vols.push_back({{"source", v}});
  j["volumes"] = vols;
  return j.dump();
}

Result<VmManifest> manifest_from_json(std::string_view text) {
  json j = internal::parse_json(text);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "vm-manifest.json is not a JSON object");
  VmManifest m;
  const char* field = "";
  try {
    field = "id"; m.id = j.at("id").get<std::string>();
    field = "name"; m.name = j.value("name", std::string());
    field = "app_id"; m.app_id = j.value("app_id", std::string());
    field = "vcpu"; m.vcpu = j.value("vcpu", 1u);
    field = "memory"; m.memory = j.value("memory", 1024u);
    field = "disk_size"; m.disk_size = j.value("disk_size", 20u);
    field = "image"; m.image = j.at("image").get<std::string>();
    field = "port_map";
    if (auto it = j.find("port_map"); it != j.end() && it->is_array())
      for (const auto& p : *it)
        m.port_map.push_back({p.value("protocol", std::string("tcp")), p.value("address", std::string()),
                              p.at("from").get<uint32_t>(), p.at("to").get<uint32_t>()});
    field = "created_at_ms"; m.created_at_ms = j.value("created_at_ms", uint64_t{0});
    field = "hugepages"; m.hugepages = j.value("hugepages", false);
    field = "pin_numa"; m.pin_numa = j.value("pin_numa", false);
    field = "gpus";
    if (auto it = j.find("gpus"); it != j.end() && it->is_object())
      m.gpus = GpuSelection{it->value("attach_mode", std::string("listed")), slots_from(*it, "gpus"),
                            slots_from(*it, "bridges")};
    field = "kms_urls"; m.kms_urls = j.value("kms_urls", std::vector<std::string>{});
    field = "gateway_urls"; m.gateway_urls = j.value("gateway_urls", std::vector<std::string>{});
    field = "no_tee"; m.no_tee = j.value("no_tee", false);
    field = "simulated_tee";
    if (auto it = j.find("simulated_tee"); it != j.end() && it->is_string()) m.simulated_tee = it->get<std::string>();
    field = "swtpm"; m.swtpm = j.value("swtpm", false);
    field = "networks";
    if (auto it = j.find("networks"); it != j.end() && it->is_array())
      for (const auto& n : *it) m.networks.push_back(network_from(n));
    if (m.networks.empty())
      if (auto it = j.find("networking"); it != j.end() && it->is_object()) m.networks.push_back(network_from(*it));
    field = "volumes";
    if (auto it = j.find("volumes"); it != j.end() && it->is_array())
      for (const auto& v : *it) m.volumes.push_back(v.at("source").get<std::string>());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("vm-manifest.json: field '") + field + "': " + e.what());
  }
  return m;
}

VmManifest manifest_for(const VmConfiguration& cfg) {
  VmManifest m;
  m.name = cfg.name;
  m.vcpu = cfg.vcpu;
  m.memory = cfg.memory;
  m.disk_size = cfg.disk_size;
  m.image = cfg.image;
  m.port_map = cfg.ports;
  m.kms_urls = cfg.kms_urls;
  m.gateway_urls = cfg.gateway_urls;
  m.no_tee = cfg.no_tee || cfg.simulated_tee.has_value();
  m.simulated_tee = cfg.simulated_tee;
  m.networks = cfg.networks;
  m.hugepages = cfg.hugepages;
  m.pin_numa = cfg.pin_numa;
  return m;
}

}  // namespace dstackvmm
