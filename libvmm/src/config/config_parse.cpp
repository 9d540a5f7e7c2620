// SPDX-License-Identifier: Apache-2.0
// vmm.toml -> Config: the key list, layering rules and path resolution.
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config_internal.hpp"
#include "base/text_util.hpp"
#include "config/toml_limits.hpp"
#include "config/toml_reader.hpp"

namespace dstackvmm {

using internal::SourcePos;
using internal::TableReader;
using internal::TomlReport;

std::string ConfigDiagnostic::to_string() const {
  std::string out = origin;
  if (line) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  if (severity == Severity::kWarning) out += "warning: ";
  return out + message;
}

namespace {

// A key whose value is one of a closed set, typed: anything else is an error at the value,
// naming the set and the closest member.
template <class E, size_t N>
void get_choice(TableReader& t, std::string_view key, E& out, std::optional<E> (*parse)(std::string_view),
                const std::array<E, N>& members) {
  const toml::node* n = t.node(key);
  if (!n) return;
  std::string text;
  t.get(key, text);  // reports a value that is not a string
  if (!n->is_string()) return;
  if (auto v = parse(text)) {
    out = *v;
    return;
  }
  std::vector<std::string> names;
  for (E m : members) names.emplace_back(to_string(m));
  std::string hint = closest_match(text, names);
  t.report().error(t.pos_of(*n), t.key_path(key),
                   "\"" + text + "\" is not one of " + join(names, ", ") + (hint.empty() ? "" : " (did you mean " + hint + "?)"));
}

void read_networking(TableReader t, NetworkingConfig& n) {
  get_choice(t, "mode", n.mode, parse_network_mode,
             std::array{NetworkMode::kUser, NetworkMode::kBridge, NetworkMode::kCustom});
  t.get("net", n.net);
  t.get("dhcp_start", n.dhcp_start);
  t.get("restrict", n.restrict);
  t.get("bridge", n.bridge);
  t.get("mac_prefix", n.mac_prefix);
  t.get("netdev", n.netdev);
  t.finish();
}

void read_port_ranges(TableReader& pm, std::vector<PortRange>& out) {
  const toml::node* n = pm.node("range");
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a) {
    pm.report().error(pm.pos_of(*n), pm.key_path("range"),
                      "expected an array of {protocol, from, to} tables, got " +
                          internal::describe_node(*n));
    return;
  }
  std::vector<PortRange> ranges;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    std::string path = pm.key_path("range") + "[" + std::to_string(i) + "]";
    if (!e.is_table()) {
      pm.report().error(pm.pos_of(e), path,
                        "expected a {protocol, from, to} table, got " + internal::describe_node(e));
      continue;
    }
    pm.report().positions()[path] = pm.pos_of(e);
    PortRange r;
    TableReader rt(pm.report(), e.as_table(), path);
    rt.get("protocol", r.protocol);
    rt.get("from", r.from);
    rt.get("to", r.to);
    rt.finish();
    ranges.push_back(r);
  }
  out = std::move(ranges);
}

void read_cvm(TableReader t, CvmConfig& c, TomlReport& report, const NetworkingConfig* top_net) {
  get_choice(t, "platform", c.platform, parse_platform,
             std::array{Platform::kAuto, Platform::kTdx, Platform::kAmdSevSnp, Platform::kNone});
  get_choice(t, "accel", c.accel, parse_accel, std::array{Accel::kAuto, Accel::kKvm, Accel::kTcg});
  get_choice(t, "guest_channel", c.guest_channel, parse_guest_channel,
             std::array{GuestChannelMode::kAuto, GuestChannelMode::kVsock, GuestChannelMode::kUserNet});
  t.get("qemu_path", c.qemu_path);
  t.get("kms_urls", c.kms_urls);
  t.get("gateway_urls", c.gateway_urls);
  if (t.present() && !t.node("gateway_urls")) t.get("tproxy_urls", c.gateway_urls);  // old name
  t.get("pccs_url", c.pccs_url);
  if (const toml::node* sim = t.node("tee_simulator")) {
    if (sim->is_table()) {
      TableReader st = t.table("tee_simulator");
      TeeSimulatorConfig ts;
      st.get("platform", ts.platform);
      st.get("mock_attestation_seed", ts.mock_attestation_seed);
      st.get("collateral_base_url", ts.collateral_base_url);
      // Per-VM values the VMM always fills in itself: accepted, as upstream, and not used.
      for (const char* key : {"mr_config", "vm_config", "aws_pcr_replay", "gcp_tpm_replay"}) (void)st.node(key);
      st.finish();
      c.tee_simulator = ts;
    } else {
      report.error(t.pos_of(*sim), t.key_path("tee_simulator"),
                   "expected a table, got " + internal::describe_node(*sim));
    }
  }
  t.get("nvidia_attestation_proxy_url", c.nvidia_attestation_proxy_url);
  t.get("docker_registry", c.docker_registry);
  t.get("volumes_dir", c.volumes_dir);
  t.get("cid_start", c.cid_start);
  t.get("cid_pool_size", c.cid_pool_size);
  t.get("max_allocable_vcpu", c.max_allocable_vcpu);
  t.get("max_allocable_memory_in_mb", c.max_allocable_memory_in_mb);
  t.get("max_disk_size", c.max_disk_size);
  t.get("qmp_socket", c.qmp_socket);
  t.get("user", c.user);
  t.get("instance_id", c.instance_id);
  t.get("use_mrconfigid", c.use_mrconfigid);
  t.get("qemu_single_pass_add_pages", c.qemu_single_pass_add_pages);
  t.get("qemu_pic", c.qemu_pic);
  t.get("qemu_version", c.qemu_version);
  t.get_size("qemu_pci_hole64_size", c.qemu_pci_hole64_size);
  t.get("qemu_hotplug_off", c.qemu_hotplug_off);
  t.get("tdx_attestation_variant", c.tdx_attestation_variant);
  t.get("host_share_mode", c.host_share_mode);
  t.get("qgs_port", c.qgs_port);

  TableReader p = t.table("product");
  auto& pr = c.product;
  for (auto [key, field] : std::initializer_list<std::pair<const char*, std::optional<std::string>*>>{
           {"bios_vendor", &pr.bios_vendor}, {"bios_version", &pr.bios_version},
           {"bios_date", &pr.bios_date}, {"bios_release", &pr.bios_release},
           {"sys_vendor", &pr.sys_vendor}, {"product_name", &pr.product_name},
           {"product_version", &pr.product_version}, {"product_serial", &pr.product_serial},
           {"product_uuid", &pr.product_uuid}, {"product_family", &pr.product_family},
           {"product_sku", &pr.product_sku}, {"board_vendor", &pr.board_vendor},
           {"board_name", &pr.board_name}, {"board_version", &pr.board_version},
           {"board_serial", &pr.board_serial}, {"board_asset_tag", &pr.board_asset_tag},
           {"chassis_vendor", &pr.chassis_vendor}, {"chassis_version", &pr.chassis_version},
           {"chassis_serial", &pr.chassis_serial}, {"chassis_asset_tag", &pr.chassis_asset_tag}})
    p.get(key, *field);
  p.finish();

  // The seed's top-level [networking] is the node default; [cvm.networking] (upstream's
  // spelling) is read over it key by key, so where both set a key, [cvm.networking] wins.
  if (top_net) c.networking = *top_net;
  TableReader net = t.table("networking");
  if (top_net && net.present())
    report.warning({}, "cvm.networking",
                   "both [networking] and [cvm.networking] are given; keys set in "
                   "[cvm.networking] win");
  read_networking(net, c.networking);

  TableReader nf = t.table("network_filter");
  nf.get("mode", c.network_filter.mode);
  nf.get("filter", c.network_filter.filter);
  nf.get("parameters", c.network_filter.parameters);
  nf.finish();

  TableReader pm = t.table("port_mapping");
  pm.get("enabled", c.port_mapping.enabled);
  pm.get("address", c.port_mapping.address);
  read_port_ranges(pm, c.port_mapping.range);
  pm.finish();

  TableReader ar = t.table("auto_restart");
  ar.get("enabled", c.auto_restart.enabled);
  ar.get("interval", c.auto_restart.interval);
  ar.get("max_retries", c.auto_restart.max_retries);
  ar.get("initial_backoff", c.auto_restart.initial_backoff);
  ar.get("max_backoff", c.auto_restart.max_backoff);
  ar.get("reset_window", c.auto_restart.reset_window);
  ar.finish();

  TableReader lg = t.table("log");
  lg.get_size("max_bytes", c.log.max_bytes);
  lg.get("max_backups", c.log.max_backups);
  lg.get("check_interval_secs", c.log.check_interval_secs);
  lg.finish();

  TableReader gpu = t.table("gpu");
  gpu.get("enabled", c.gpu.enabled);
  gpu.get("listing", c.gpu.listing);
  gpu.get("exclude", c.gpu.exclude);
  gpu.get("include", c.gpu.include);
  gpu.get("allow_attach_all", c.gpu.allow_attach_all);
  gpu.finish();
  t.finish();
}

void read_root(TableReader root, Config& c, TomlReport& report) {
  root.get("workers", c.workers);
  root.get("max_blocking", c.max_blocking);
  root.get("ident", c.ident);
  root.get("temp_dir", c.temp_dir);
  root.get("keep_alive", c.keep_alive);
  root.get("log_level", c.log_level);
  root.get("address", c.address);
  root.get("port", c.port);
  root.get("allow_insecure_remote", c.allow_insecure_remote);
  root.get("allowed_hosts", c.allowed_hosts);
  root.get("reuse", c.reuse);
  root.get("kms_url", c.kms_url);
  root.get("event_buffer_size", c.event_buffer_size);
  root.get("node_name", c.node_name);
  root.get("run_path", c.run_path);

  std::optional<std::string> legacy_image_path;
  root.get("image_path", legacy_image_path);
  TableReader img = root.table("image");
  bool image_path_set = img.present() && img.node("path");
  img.get("path", c.image.path);
  img.get("registry", c.image.registry);
  img.get("max_unpacked_mb", c.image.max_unpacked_mb);
  img.finish();
  if (legacy_image_path) {
    if (image_path_set)
      report.warning(report.positions()["image_path"], "image_path",
                     "deprecated; [image] path is also set and wins");
    else
      c.image.path = *legacy_image_path;
  }

  std::optional<NetworkingConfig> top_net;
  TableReader net = root.table("networking");
  if (net.present()) {
    top_net = c.cvm.networking;
    read_networking(net, *top_net);
  }
  read_cvm(root.table("cvm"), c.cvm, report, top_net ? &*top_net : nullptr);

  TableReader netd = root.table("netd");
  netd.get("socket", c.netd.socket);
  netd.get("allowed_uids", c.netd.allowed_uids);
  netd.get("libvirt_uri", c.netd.libvirt_uri);
  netd.finish();

  TableReader gw = root.table("gateway");
  gw.get("base_domain", c.gateway.base_domain);
  gw.get("port", c.gateway.port);
  gw.get("agent_port", c.gateway.agent_port);
  gw.finish();

  TableReader auth = root.table("auth");
  auth.get("enabled", c.auth.enabled);
  auth.get("tokens", c.auth.tokens);
  auth.get("htpasswd_file", c.auth.htpasswd_file);
  auth.finish();

  TableReader sv = root.table("supervisor");
  sv.get("exe", c.supervisor.exe);
  sv.get("sock", c.supervisor.sock);
  sv.get("pid_file", c.supervisor.pid_file);
  sv.get("log_file", c.supervisor.log_file);
  sv.get("detached", c.supervisor.detached);
  sv.get("auto_start", c.supervisor.auto_start);
  sv.finish();

  TableReader ha = root.table("host_api");
  ha.get("ident", c.host_api.ident);
  ha.get("address", c.host_api.address);
  ha.get("port", c.host_api.port);
  ha.finish();

  TableReader kp = root.table("key_provider");
  kp.get("enabled", c.key_provider.enabled);
  kp.get("address", c.key_provider.address);
  kp.get("port", c.key_provider.port);
  kp.finish();
  root.finish();
}

// Relative paths in a config resolve against the folder of the file that names them.
void resolve_path(std::string& p, const std::filesystem::path& base) {
  if (p.empty()) return;
  std::filesystem::path path(p);
  if (path.is_absolute()) return;
  p = (base / path).lexically_normal().string();
}

void resolve_paths(Config& c, const std::filesystem::path& base) {
  resolve_path(c.temp_dir, base);
  resolve_path(c.run_path, base);
  resolve_path(c.image.path, base);
  resolve_path(c.cvm.volumes_dir, base);
  resolve_path(c.auth.htpasswd_file, base);
  resolve_path(c.supervisor.exe, base);
  resolve_path(c.supervisor.sock, base);
  resolve_path(c.supervisor.pid_file, base);
  resolve_path(c.supervisor.log_file, base);
  resolve_path(c.netd.socket, base);
  // A bare program name is looked up on PATH; only a name with a slash is a path.
  if (c.cvm.qemu_path.find('/') != std::string::npos) resolve_path(c.cvm.qemu_path, base);
  if (starts_with(c.address, "unix:")) {
    std::string sock = c.address.substr(5);
    resolve_path(sock, base);
    c.address = "unix:" + sock;
  }
}

}  // namespace

Result<Config> parse_config(std::string_view text, const ParseOptions& options,
                            std::vector<ConfigDiagnostic>* diagnostics, const Config& base) {
  TomlReport report(options.origin);
  Config config = base;
  toml::table root;
  try {
    if (auto bad = internal::check_toml_limits(text); !bad.ok())
      report.error({bad.line, bad.column}, "", bad.message);
    else
      root = toml::parse(text, options.origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    report.error({static_cast<uint32_t>(b.line), static_cast<uint32_t>(b.column)}, "",
                 std::string(e.description()));
  }
  if (!report.has_errors()) {
    read_root(TableReader(report, &root, ""), config, report);
    resolve_paths(config, options.base_dir);
    internal::validate_config(config, report);
  }
  auto& all = report.diagnostics();
  if (diagnostics) diagnostics->insert(diagnostics->end(), all.begin(), all.end());
  if (report.has_errors()) {
    std::string message;
    for (const auto& d : all) {
      if (d.severity != ConfigDiagnostic::Severity::kError) continue;
      if (!message.empty()) message += '\n';
      message += d.to_string();
    }
    return make_error(ErrorCode::kInvalidArgument, message);
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& path,
                           std::vector<ConfigDiagnostic>* diagnostics) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ErrorCode::kNotFound,
                      path.string() + ": cannot open config file: " + std::strerror(errno));
  // At most one byte past the limit is read: a FIFO or a huge file is refused, not slurped.
  std::string text(internal::TomlLimits{}.max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  ParseOptions options;
  options.origin = path.string();
  options.base_dir = std::filesystem::absolute(path).parent_path();
  return parse_config(text, options, diagnostics);
}

}  // namespace dstackvmm
