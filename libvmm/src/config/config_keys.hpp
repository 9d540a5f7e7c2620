// SPDX-License-Identifier: Apache-2.0
// Every key of vmm.toml, listed once: the parser (config_parse.cpp) and the printer
// (config_print.cpp) both walk these tables, so a key cannot be read under one name and
// printed under another, or printed and never read. A visitor offers, for a key `name`:
//   key(name, v)                 a typed value (bool, integers, string, optionals, lists, a string map)
//   size(name, v)                bytes: an integer, or "512K", "4M", "1G" when read
//   choice(name, v, parse, all)  an enum by its name (to_string), one of `all`
//   table(name, section)         a sub-table ([cvm.log])
//   optional_table(name, opt)    a sub-table whose presence means something ([cvm.tee_simulator])
//   tables(name, list, shape)    an array of tables ([[cvm.port_mapping.range]]); `shape` names it in errors
//   old_name(name, current, v)   a key's former name, read when the current one is absent (not printed)
//   ignored(name)                accepted and not used (not printed)
// The section may be const (the printer) or not (the parser).
#pragma once

#include <array>
#include <type_traits>

#include <dstackvmm/config.hpp>

namespace dstackvmm::config_keys {

template <class S, class T>
concept Of = std::is_same_v<std::remove_const_t<S>, T>;

template <class V, Of<NetworkingConfig> N>
void describe(V& v, N& n) {
  v.choice("mode", n.mode, parse_network_mode, std::array{NetworkMode::kUser, NetworkMode::kBridge, NetworkMode::kCustom});
  v.key("net", n.net);
  v.key("dhcp_start", n.dhcp_start);
  v.key("restrict", n.restrict);
  v.key("bridge", n.bridge);
  v.key("mac_prefix", n.mac_prefix);
  v.key("netdev", n.netdev);
}

template <class V, Of<TeeSimulatorConfig> T>
void describe(V& v, T& t) {
  v.key("platform", t.platform);
  v.key("mock_attestation_seed", t.mock_attestation_seed);
  v.key("collateral_base_url", t.collateral_base_url);
  // Per-VM values the VMM always fills in itself: accepted, as upstream, and not used.
  for (const char* name : {"mr_config", "vm_config", "aws_pcr_replay", "gcp_tpm_replay"}) v.ignored(name);
}

template <class V, Of<ProductConfig> P>
void describe(V& v, P& p) {
  v.key("bios_vendor", p.bios_vendor);
  v.key("bios_version", p.bios_version);
  v.key("bios_date", p.bios_date);
  v.key("bios_release", p.bios_release);
  v.key("sys_vendor", p.sys_vendor);
  v.key("product_name", p.product_name);
  v.key("product_version", p.product_version);
  v.key("product_serial", p.product_serial);
  v.key("product_uuid", p.product_uuid);
  v.key("product_family", p.product_family);
  v.key("product_sku", p.product_sku);
  v.key("board_vendor", p.board_vendor);
  v.key("board_name", p.board_name);
  v.key("board_version", p.board_version);
  v.key("board_serial", p.board_serial);
  v.key("board_asset_tag", p.board_asset_tag);
  v.key("chassis_vendor", p.chassis_vendor);
  v.key("chassis_version", p.chassis_version);
  v.key("chassis_serial", p.chassis_serial);
  v.key("chassis_asset_tag", p.chassis_asset_tag);
}

template <class V, Of<NetworkFilterConfig> F>
void describe(V& v, F& f) {
  v.key("mode", f.mode);
  v.key("filter", f.filter);
  v.key("parameters", f.parameters);
}

template <class V, Of<PortRange> R>
void describe(V& v, R& r) {
  v.key("protocol", r.protocol);
  v.key("from", r.from);
  v.key("to", r.to);
}

template <class V, Of<PortMappingConfig> P>
void describe(V& v, P& p) {
  v.key("enabled", p.enabled);
  v.key("address", p.address);
  v.tables("range", p.range, "{protocol, from, to}");
}

template <class V, Of<AutoRestartConfig> A>
void describe(V& v, A& a) {
  v.key("enabled", a.enabled);
  v.key("interval", a.interval);
  v.key("max_retries", a.max_retries);
  v.key("initial_backoff", a.initial_backoff);
  v.key("max_backoff", a.max_backoff);
  v.key("reset_window", a.reset_window);
}

template <class V, Of<LogRotationConfig> L>
void describe(V& v, L& l) {
  v.size("max_bytes", l.max_bytes);
  v.key("max_backups", l.max_backups);
  v.key("check_interval_secs", l.check_interval_secs);
}

template <class V, Of<GpuConfig> G>
void describe(V& v, G& g) {
  v.key("enabled", g.enabled);
  v.key("listing", g.listing);
  v.key("exclude", g.exclude);
  v.key("include", g.include);
  v.key("allow_attach_all", g.allow_attach_all);
}

template <class V, Of<CvmConfig> C>
void describe(V& v, C& c) {
  v.choice("platform", c.platform, parse_platform, std::array{Platform::kAuto, Platform::kTdx, Platform::kAmdSevSnp, Platform::kNone});
  v.choice("accel", c.accel, parse_accel, std::array{Accel::kAuto, Accel::kKvm, Accel::kTcg});
  v.choice("guest_channel", c.guest_channel, parse_guest_channel,
           std::array{GuestChannelMode::kAuto, GuestChannelMode::kVsock, GuestChannelMode::kUserNet});
  v.key("qemu_path", c.qemu_path);
  v.key("kms_urls", c.kms_urls);
  v.key("gateway_urls", c.gateway_urls);
  v.old_name("tproxy_urls", "gateway_urls", c.gateway_urls);
  v.key("pccs_url", c.pccs_url);
  v.optional_table("tee_simulator", c.tee_simulator);
  v.key("nvidia_attestation_proxy_url", c.nvidia_attestation_proxy_url);
  v.key("docker_registry", c.docker_registry);
  v.key("volumes_dir", c.volumes_dir);
  v.key("cid_start", c.cid_start);
  v.key("cid_pool_size", c.cid_pool_size);
  v.key("max_allocable_vcpu", c.max_allocable_vcpu);
  v.key("max_allocable_memory_in_mb", c.max_allocable_memory_in_mb);
  v.key("max_disk_size", c.max_disk_size);
  v.key("qmp_socket", c.qmp_socket);
  v.key("user", c.user);
  v.key("instance_id", c.instance_id);
  v.key("use_mrconfigid", c.use_mrconfigid);
  v.key("qemu_single_pass_add_pages", c.qemu_single_pass_add_pages);
  v.key("qemu_pic", c.qemu_pic);
  v.key("qemu_version", c.qemu_version);
  v.size("qemu_pci_hole64_size", c.qemu_pci_hole64_size);
  v.key("qemu_hotplug_off", c.qemu_hotplug_off);
  v.key("tdx_attestation_variant", c.tdx_attestation_variant);
  v.key("host_share_mode", c.host_share_mode);
  v.key("qgs_port", c.qgs_port);
  v.table("product", c.product);
  v.table("networking", c.networking);  // over a top-level [networking], key by key (config_parse.cpp)
  v.table("network_filter", c.network_filter);
  v.table("port_mapping", c.port_mapping);
  v.table("auto_restart", c.auto_restart);
  v.table("log", c.log);
  v.table("gpu", c.gpu);
}

template <class V, Of<ImageConfig> I>
void describe(V& v, I& i) {
  v.key("path", i.path);
  v.key("registry", i.registry);
  v.key("max_unpacked_mb", i.max_unpacked_mb);
}

template <class V, Of<NetdConfig> N>
void describe(V& v, N& n) {
  v.key("socket", n.socket);
  v.key("allowed_uids", n.allowed_uids);
  v.key("libvirt_uri", n.libvirt_uri);
}

template <class V, Of<GatewayConfig> G>
void describe(V& v, G& g) {
  v.key("base_domain", g.base_domain);
  v.key("port", g.port);
  v.key("agent_port", g.agent_port);
}

template <class V, Of<AuthConfig> A>
void describe(V& v, A& a) {
  v.key("enabled", a.enabled);
  v.key("tokens", a.tokens);
  v.key("htpasswd_file", a.htpasswd_file);
}

template <class V, Of<SupervisorConfig> S>
void describe(V& v, S& s) {
  v.key("exe", s.exe);
  v.key("sock", s.sock);
  v.key("pid_file", s.pid_file);
  v.key("log_file", s.log_file);
  v.key("detached", s.detached);
  v.key("auto_start", s.auto_start);
}

template <class V, Of<HostApiConfig> H>
void describe(V& v, H& h) {
  v.key("ident", h.ident);
  v.key("address", h.address);
  v.key("port", h.port);
}

template <class V, Of<KeyProviderConfig> K>
void describe(V& v, K& k) {
  v.key("enabled", k.enabled);
  v.key("address", k.address);
  v.key("port", k.port);
}

// The top level. The deprecated image_path and the seed's top-level [networking] are read by
// the parser around this walk (config_parse.cpp): neither is printed.
template <class V, Of<Config> C>
void describe(V& v, C& c) {
  v.key("workers", c.workers);
  v.key("max_blocking", c.max_blocking);
  v.key("ident", c.ident);
  v.key("temp_dir", c.temp_dir);
  v.key("keep_alive", c.keep_alive);
  v.key("log_level", c.log_level);
  v.key("address", c.address);
  v.key("port", c.port);
  v.key("allow_insecure_remote", c.allow_insecure_remote);
  v.key("allowed_hosts", c.allowed_hosts);
  v.key("reuse", c.reuse);
  v.key("kms_url", c.kms_url);
  v.key("event_buffer_size", c.event_buffer_size);
  v.key("node_name", c.node_name);
  v.key("run_path", c.run_path);
  v.table("image", c.image);
  v.table("cvm", c.cvm);
  v.table("netd", c.netd);
  v.table("gateway", c.gateway);
  v.table("auth", c.auth);
  v.table("supervisor", c.supervisor);
  v.table("host_api", c.host_api);
  v.table("key_provider", c.key_provider);
}

}  // namespace dstackvmm::config_keys
