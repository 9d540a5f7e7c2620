// SPDX-License-Identifier: Apache-2.0
// Config -> TOML text. Built with toml++ so quoting and escaping are never ours to get wrong.
#include <sstream>

#include <toml++/toml.h>

#include <dstackvmm/config.hpp>

namespace dstackvmm {
namespace {

toml::array strings(const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  return a;
}

int64_t i64(uint64_t v) { return static_cast<int64_t>(v); }

void put(toml::table& t, std::string_view key, const std::optional<std::string>& v) {
  if (v) t.insert_or_assign(key, *v);
}

toml::table networking(const NetworkingConfig& n) {
  return toml::table{{"mode", std::string(to_string(n.mode))}, {"net", n.net},
                     {"dhcp_start", n.dhcp_start}, {"restrict", n.restrict},
                     {"bridge", n.bridge},   {"mac_prefix", n.mac_prefix},
                     {"netdev", n.netdev}};
}

toml::table cvm(const CvmConfig& c) {
  toml::table t{{"platform", std::string(to_string(c.platform))},
                {"accel", std::string(to_string(c.accel))},
                {"guest_channel", std::string(to_string(c.guest_channel))},
                {"qemu_path", c.qemu_path},
                {"kms_urls", strings(c.kms_urls)},
                {"gateway_urls", strings(c.gateway_urls)},
                {"pccs_url", c.pccs_url},
                {"docker_registry", c.docker_registry},
                {"volumes_dir", c.volumes_dir},
                {"cid_start", i64(c.cid_start)},
                {"cid_pool_size", i64(c.cid_pool_size)},
                {"max_allocable_vcpu", i64(c.max_allocable_vcpu)},
                {"max_allocable_memory_in_mb", i64(c.max_allocable_memory_in_mb)},
                {"max_disk_size", i64(c.max_disk_size)},
                {"qmp_socket", c.qmp_socket},
                {"user", c.user},
                {"instance_id", c.instance_id},
                {"use_mrconfigid", c.use_mrconfigid},
                {"qemu_pci_hole64_size", i64(c.qemu_pci_hole64_size)},
                {"qemu_hotplug_off", c.qemu_hotplug_off},
                {"tdx_attestation_variant", c.tdx_attestation_variant},
                {"host_share_mode", c.host_share_mode}};
  if (c.tee_simulator) {
    toml::table sim{{"platform", c.tee_simulator->platform}};
    put(sim, "mock_attestation_seed", c.tee_simulator->mock_attestation_seed);
    put(sim, "collateral_base_url", c.tee_simulator->collateral_base_url);
    t.insert_or_assign("tee_simulator", std::move(sim));
  }
  put(t, "nvidia_attestation_proxy_url", c.nvidia_attestation_proxy_url);
  if (c.qemu_single_pass_add_pages) t.insert_or_assign("qemu_single_pass_add_pages", *c.qemu_single_pass_add_pages);
  if (c.qemu_pic) t.insert_or_assign("qemu_pic", *c.qemu_pic);
  put(t, "qemu_version", c.qemu_version);
  if (c.qgs_port) t.insert_or_assign("qgs_port", i64(*c.qgs_port));

  toml::table product;
  const ProductConfig& p = c.product;
  for (auto [key, field] : std::initializer_list<std::pair<const char*, const std::optional<std::string>*>>{
           {"bios_vendor", &p.bios_vendor}, {"bios_version", &p.bios_version},
           {"bios_date", &p.bios_date}, {"bios_release", &p.bios_release},
           {"sys_vendor", &p.sys_vendor}, {"product_name", &p.product_name},
           {"product_version", &p.product_version}, {"product_serial", &p.product_serial},
           {"product_uuid", &p.product_uuid}, {"product_family", &p.product_family},
           {"product_sku", &p.product_sku}, {"board_vendor", &p.board_vendor},
           {"board_name", &p.board_name}, {"board_version", &p.board_version},
           {"board_serial", &p.board_serial}, {"board_asset_tag", &p.board_asset_tag},
           {"chassis_vendor", &p.chassis_vendor}, {"chassis_version", &p.chassis_version},
           {"chassis_serial", &p.chassis_serial}, {"chassis_asset_tag", &p.chassis_asset_tag}})
    put(product, key, *field);
  t.insert_or_assign("product", std::move(product));
  t.insert_or_assign("networking", networking(c.networking));

  toml::table params;
  for (const auto& [k, v] : c.network_filter.parameters) params.insert_or_assign(k, v);
  t.insert_or_assign("network_filter", toml::table{{"mode", c.network_filter.mode},
                                                   {"filter", c.network_filter.filter},
                                                   {"parameters", std::move(params)}});
  toml::array ranges;
  for (const auto& r : c.port_mapping.range)
    ranges.push_back(toml::table{{"protocol", r.protocol}, {"from", i64(r.from)}, {"to", i64(r.to)}});
  t.insert_or_assign("port_mapping", toml::table{{"enabled", c.port_mapping.enabled},
                                                 {"address", c.port_mapping.address},
                                                 {"range", std::move(ranges)}});
  const AutoRestartConfig& ar = c.auto_restart;
  t.insert_or_assign("auto_restart", toml::table{{"enabled", ar.enabled},
                                                 {"interval", i64(ar.interval)},
                                                 {"max_retries", i64(ar.max_retries)},
                                                 {"initial_backoff", i64(ar.initial_backoff)},
                                                 {"max_backoff", i64(ar.max_backoff)},
                                                 {"reset_window", i64(ar.reset_window)}});
  t.insert_or_assign("log", toml::table{{"max_bytes", i64(c.log.max_bytes)},
                                        {"max_backups", i64(c.log.max_backups)},
                                        {"check_interval_secs", i64(c.log.check_interval_secs)}});
  t.insert_or_assign("gpu", toml::table{{"enabled", c.gpu.enabled},
                                        {"listing", strings(c.gpu.listing)},
                                        {"exclude", strings(c.gpu.exclude)},
                                        {"include", strings(c.gpu.include)},
                                        {"allow_attach_all", c.gpu.allow_attach_all}});
  return t;
}

}  // namespace

std::string print_config(const Config& c) {
  toml::array uids;
  for (uint32_t u : c.netd.allowed_uids) uids.push_back(i64(u));
  toml::table root{
      {"workers", i64(c.workers)},
      {"max_blocking", i64(c.max_blocking)},
      {"ident", c.ident},
      {"temp_dir", c.temp_dir},
      {"keep_alive", i64(c.keep_alive)},
      {"log_level", c.log_level},
      {"address", c.address},
      {"port", i64(c.port)},
      {"allow_insecure_remote", c.allow_insecure_remote},
      {"allowed_hosts", strings(c.allowed_hosts)},
      {"reuse", c.reuse},
      {"kms_url", c.kms_url},
      {"event_buffer_size", i64(c.event_buffer_size)},
      {"node_name", c.node_name},
      {"run_path", c.run_path},
      {"image", toml::table{{"path", c.image.path}, {"registry", c.image.registry}, {"max_unpacked_mb", i64(c.image.max_unpacked_mb)}}},
      {"cvm", cvm(c.cvm)},
      {"netd", toml::table{{"socket", c.netd.socket},
                           {"allowed_uids", std::move(uids)},
                           {"libvirt_uri", c.netd.libvirt_uri}}},
      {"gateway", toml::table{{"base_domain", c.gateway.base_domain},
                              {"port", i64(c.gateway.port)},
                              {"agent_port", i64(c.gateway.agent_port)}}},
      {"auth", toml::table{{"enabled", c.auth.enabled},
                           {"tokens", strings(c.auth.tokens)},
                           {"htpasswd_file", c.auth.htpasswd_file}}},
      {"supervisor", toml::table{{"exe", c.supervisor.exe},
                                 {"sock", c.supervisor.sock},
                                 {"pid_file", c.supervisor.pid_file},
                                 {"log_file", c.supervisor.log_file},
                                 {"detached", c.supervisor.detached},
                                 {"auto_start", c.supervisor.auto_start}}},
      {"host_api", toml::table{{"ident", c.host_api.ident},
                               {"address", c.host_api.address},
                               {"port", i64(c.host_api.port)}}},
      {"key_provider", toml::table{{"enabled", c.key_provider.enabled},
                                   {"address", c.key_provider.address},
                                   {"port", i64(c.key_provider.port)}}},
  };
  std::ostringstream out;
  out << root << '\n';
  return out.str();
}

}  // namespace dstackvmm
