// SPDX-License-Identifier: Apache-2.0
// Semantic checks of a Config. Upstream validates most of this only in check-config; we do
// it at every start, and report every problem rather than the first.
#include <arpa/inet.h>

#include <cctype>
#include <filesystem>

#include <dstackvmm/listen_address.hpp>

#include "config/config_internal.hpp"
#include "base/text_util.hpp"

namespace dstackvmm {
namespace internal {
namespace {

constexpr uint64_t kMaxWorkers = 256;

class Checker {
 public:
  explicit Checker(TomlReport& report) : report_(report) {}

  void fail(const std::string& key, std::string message) {
    auto it = report_.positions().find(key);
    report_.error(it == report_.positions().end() ? SourcePos{} : it->second, key,
                  std::move(message));
  }
  void warn(const std::string& key, std::string message) {
    auto it = report_.positions().find(key);
    report_.warning(it == report_.positions().end() ? SourcePos{} : it->second, key, std::move(message));
  }
  void one_of(const std::string& key, const std::string& value,
              std::initializer_list<const char*> allowed) {
    std::vector<std::string> names;
    for (const char* a : allowed) {
      if (value == a) return;
      names.emplace_back(a);
    }
    std::string hint = closest_match(value, names);
    fail(key, "\"" + value + "\" is not one of " + join(names, ", ") +
                  (hint.empty() ? "" : " (did you mean " + hint + "?)"));
  }
  void within(const std::string& key, uint64_t value, uint64_t min, uint64_t max) {
    if (value < min || value > max)
      fail(key, std::to_string(value) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  void positive(const std::string& key, uint64_t value) {
    if (value == 0) fail(key, "must be greater than zero");
  }
  void port(const std::string& key, uint64_t value) {
    if (value < 1 || value > 65535) fail(key, std::to_string(value) + " is not a port in 1..65535");
  }
  void ip(const std::string& key, const std::string& value) {
    if (!is_ip_address(value)) fail(key, "\"" + value + "\" is not an IP address");
  }
  void url(const std::string& key, const std::string& value) {
    auto sep = value.find("://");
    if (sep == std::string::npos || sep == 0) {
      fail(key, "\"" + value + "\" is not a valid URL");
      return;
    }
    std::string scheme = value.substr(0, sep);
    if (scheme != "http" && scheme != "https")
      fail(key, "URL must use http or https: " + value);
    else if (sep + 3 >= value.size() || value[sep + 3] == '/' || value[sep + 3] == ':')
      fail(key, "URL must include a host: " + value);
  }

 private:
  TomlReport& report_;
};

bool valid_mac_prefix(const std::string& prefix) {
  if (prefix.empty()) return true;
  size_t parts = 0, start = 0;
  while (true) {
    size_t end = prefix.find(':', start);
    std::string part = prefix.substr(start, end - start);
    if (part.size() != 2 || !std::isxdigit(static_cast<unsigned char>(part[0])) ||
        !std::isxdigit(static_cast<unsigned char>(part[1])))
      return false;
    ++parts;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return parts >= 1 && parts <= 3;
}

}  // namespace

namespace {

// Each part of validate_config, in the file's order: every problem is reported, not only the first.
void check_top_level(Checker& ck, const Config& c) {
  // Counts that size threads, buffers or tables get a ceiling: a typo must not abort the
  // daemon after it says it is serving, or let one VM's events eat the host's memory.
  ck.within("workers", c.workers, 1, kMaxWorkers);
  ck.within("max_blocking", c.max_blocking, 1, 1024);
  ck.within("keep_alive", c.keep_alive, 0, 3600);
  ck.one_of("log_level", c.log_level, {"trace", "debug", "info", "warn", "error"});
  ck.within("event_buffer_size", c.event_buffer_size, 1, 10000);
  if (auto addr = parse_listen_address(c.address, c.port); !addr.ok())
    ck.fail("address", addr.error().message);
  else if (!addr->is_local() && !c.auth.enabled && !c.allow_insecure_remote)
    ck.fail("address", addr->to_string() + " is reachable from other hosts and [auth] is off: anyone who reaches it "
                       "controls every VM. Enable [auth], listen on 127.0.0.1 or a unix socket, or set "
                       "allow_insecure_remote = true if this is really meant");
  for (const auto& h : c.allowed_hosts) {
    bool ok = !h.empty() && h.size() <= 253;
    for (char ch : h) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.');
    if (!ok) ck.fail("allowed_hosts", "\"" + h + "\" is not a host name (letters, digits, '-' and '.', no port)");
  }
  if (!c.run_path.empty() && !c.image.path.empty())
    if (auto s = check_state_folders(c.run_path, c.image.path); !s.ok()) ck.fail("run_path", s.error().message);
  if (!c.kms_url.empty()) ck.url("kms_url", c.kms_url);
  ck.within("image.max_unpacked_mb", c.image.max_unpacked_mb, 1, 1u << 22);
}

void check_cvm(Checker& ck, const CvmConfig& v) {
  // platform, accel and guest_channel are typed: the parser refuses anything else.
  ck.one_of("cvm.tdx_attestation_variant", v.tdx_attestation_variant, {"auto", "legacy", "lite"});
  ck.one_of("cvm.host_share_mode", v.host_share_mode, {"9p", "vhd", "vvfat"});
  if (v.cid_start < 3) ck.fail("cvm.cid_start", "must be at least 3 (0-2 are reserved vsock CIDs)");
  ck.within("cvm.cid_pool_size", v.cid_pool_size, 1, 1u << 20);
  if (uint64_t{v.cid_start} + v.cid_pool_size > (uint64_t{1} << 32))
    ck.fail("cvm.cid_pool_size", "cid_start " + std::to_string(v.cid_start) + " + cid_pool_size " +
                                     std::to_string(v.cid_pool_size) + " overflows 32 bits");
  ck.positive("cvm.max_allocable_vcpu", v.max_allocable_vcpu);
  ck.positive("cvm.max_allocable_memory_in_mb", v.max_allocable_memory_in_mb);
  ck.positive("cvm.max_disk_size", v.max_disk_size);
  for (size_t i = 0; i < v.kms_urls.size(); ++i) ck.url("cvm.kms_urls", v.kms_urls[i]);
  for (size_t i = 0; i < v.gateway_urls.size(); ++i) ck.url("cvm.gateway_urls", v.gateway_urls[i]);
  if (!v.pccs_url.empty()) ck.url("cvm.pccs_url", v.pccs_url);
  if (v.nvidia_attestation_proxy_url && !v.nvidia_attestation_proxy_url->empty())
    ck.url("cvm.nvidia_attestation_proxy_url", *v.nvidia_attestation_proxy_url);
  if (v.qgs_port) ck.port("cvm.qgs_port", *v.qgs_port);
}

// [cvm.networking], [cvm.network_filter] and what only a network filter would use.
void check_networking(Checker& ck, const CvmConfig& v) {
  const NetworkingConfig& n = v.networking;
  if (!valid_mac_prefix(n.mac_prefix))
    ck.fail("cvm.networking.mac_prefix", "\"" + n.mac_prefix +
                                             "\" must contain 1 to 3 two-digit hexadecimal bytes");
  if (n.mode == NetworkMode::kBridge && n.bridge.find_first_not_of(" \t") == std::string::npos)
    ck.fail("cvm.networking.bridge", "must not be empty in bridge mode");
  if (n.mode == NetworkMode::kCustom && n.netdev.empty())
    ck.fail("cvm.networking.netdev", "must not be empty in custom mode");
  ck.one_of("cvm.network_filter.mode", v.network_filter.mode, {"none", "libvirt"});
  // Keys this daemon reads but cannot honour are refused or, where upstream would not use
  // them either, named in a warning: an accepted key that does nothing is a trap.
  const NetworkFilterConfig filter_defaults;
  if (v.network_filter.mode == "libvirt")
    ck.fail("cvm.network_filter.mode", "\"libvirt\" (nwfilter rules on bridged VMs through dstack-netd) is not supported by "
                                       "this daemon; bridged VMs use QEMU's bridge helper without a filter. Set mode = \"none\" "
                                       "or remove [cvm.network_filter]");
  else if (v.network_filter.filter != filter_defaults.filter || !v.network_filter.parameters.empty())
    ck.warn("cvm.network_filter", "filter and parameters take effect only with mode = \"libvirt\"; with mode = \"none\" "
                                  "they are ignored, as upstream ignores them");
  if (!v.instance_id.empty())
    ck.warn("cvm.instance_id", "names the TAP devices of [cvm.network_filter] mode = \"libvirt\", which this daemon does "
                               "not support; it is ignored, as upstream ignores it with mode = \"none\"");
  if (v.tee_simulator)
    ck.one_of("cvm.tee_simulator.platform", v.tee_simulator->platform,
              {"dstack-tdx", "dstack-gcp-tdx", "dstack-nitro-enclave", "dstack-amd-sev-snp", "dstack-aws-nitro-tpm"});
}

// [cvm.port_mapping] and [cvm.auto_restart].
void check_ports_and_restart(Checker& ck, const CvmConfig& v) {
  ck.ip("cvm.port_mapping.address", v.port_mapping.address);
  for (size_t i = 0; i < v.port_mapping.range.size(); ++i) {
    const PortRange& r = v.port_mapping.range[i];
    std::string key = "cvm.port_mapping.range[" + std::to_string(i) + "]";
    ck.one_of(key + ".protocol", r.protocol, {"tcp", "udp"});
    ck.port(key + ".from", r.from);
    ck.port(key + ".to", r.to);
    if (r.from > r.to)
      ck.fail(key, "range start " + std::to_string(r.from) + " exceeds end " + std::to_string(r.to));
  }

  const AutoRestartConfig& ar = v.auto_restart;
  if (ar.enabled) {
    if (ar.interval == 0) ck.fail("cvm.auto_restart.interval", "must be greater than zero when enabled");
    if (ar.initial_backoff == 0)
      ck.fail("cvm.auto_restart.initial_backoff", "must be greater than zero when enabled");
    else if (ar.initial_backoff > ar.max_backoff)
      ck.fail("cvm.auto_restart.max_backoff",
              "initial_backoff " + std::to_string(ar.initial_backoff) + " must not exceed max_backoff " +
                  std::to_string(ar.max_backoff));
  }
}

// [netd], temp_dir, [gateway], [supervisor], [host_api], [key_provider].
void check_services(Checker& ck, const Config& c) {
  if (c.netd != NetdConfig{})
    ck.warn("netd", "[netd] is used only by [cvm.network_filter] mode = \"libvirt\", which this daemon does not "
                    "support; the settings are ignored, as upstream ignores them with mode = \"none\"");
  if (c.temp_dir != Config{}.temp_dir)
    ck.warn("temp_dir", "is where Rocket buffers uploaded files; neither upstream's VMM nor this daemon takes "
                        "uploads, so the folder is never used");

  ck.port("gateway.port", c.gateway.port);
  ck.port("gateway.agent_port", c.gateway.agent_port);

  if (c.supervisor.sock.empty()) ck.fail("supervisor.sock", "must not be empty");
  if (c.supervisor.auto_start) {
    if (c.supervisor.exe.empty()) ck.fail("supervisor.exe", "must not be empty when supervisor.auto_start is enabled");
    if (c.supervisor.pid_file.empty()) ck.fail("supervisor.pid_file", "must not be empty when supervisor.auto_start is enabled");
    if (c.supervisor.log_file.empty()) ck.fail("supervisor.log_file", "must not be empty when supervisor.auto_start is enabled");
  }

  if (!starts_with(c.host_api.address, "vsock:")) {
    ck.fail("host_api.address", "must be a vsock address (e.g. 'vsock:2'), got '" + c.host_api.address + "'");
  } else {
    std::string cid = c.host_api.address.substr(6);
    bool hex = starts_with(cid, "0x") || starts_with(cid, "0X");
    std::string digits = hex ? cid.substr(2) : cid;
    bool ok = !digits.empty() && digits.size() <= (hex ? 8u : 10u);
    for (char ch : digits) ok = ok && (hex ? std::isxdigit(static_cast<unsigned char>(ch)) : std::isdigit(static_cast<unsigned char>(ch)));
    if (ok && !hex && std::stoull(digits) > 0xffffffffull) ok = false;
    if (!ok) ck.fail("host_api.address", "contains an invalid CID: '" + cid + "'");
  }
  ck.port("host_api.port", c.host_api.port);

  ck.ip("key_provider.address", c.key_provider.address);
  ck.port("key_provider.port", c.key_provider.port);
}

}  // namespace

void validate_config(const Config& c, TomlReport& report) {
  Checker ck(report);
  check_top_level(ck, c);
  check_cvm(ck, c.cvm);
  check_networking(ck, c.cvm);
  check_ports_and_restart(ck, c.cvm);
  check_services(ck, c);
}

}  // namespace internal

Status check_state_folders(const std::filesystem::path& run_path, const std::filesystem::path& image_path) {
  namespace fs = std::filesystem;
  auto norm = [](const fs::path& p) {
    fs::path a = fs::absolute(p).lexically_normal();
    if (a.has_parent_path() && a.filename().empty()) a = a.parent_path();  // drop a trailing slash
    return a;
  };
  // Folders that hold the system or other users' data: never the daemon's to sweep.
  static const char* const kSystem[] = {"/",     "/bin",  "/boot", "/dev", "/etc", "/home", "/lib",  "/lib32",
                                        "/lib64", "/media", "/mnt",  "/opt", "/proc", "/root", "/run",  "/sbin",
                                        "/srv",  "/sys",  "/tmp",  "/usr", "/var",  "/var/lib", "/var/run",
                                        "/var/tmp", "/usr/local"};
  auto inside = [](const fs::path& child, const fs::path& parent) {
    auto rel = child.lexically_relative(parent);
    return !rel.empty() && *rel.begin() != "..";
  };
  fs::path run = norm(run_path), img = norm(image_path);
  for (auto [key, p] : {std::pair{"run_path", run}, std::pair{"image.path", img}})
    for (const char* sys : kSystem)
      if (p == sys)
        return make_error(ErrorCode::kInvalidArgument, std::string(key) + " \"" + p.string() +
                                                           "\" is a system folder; give the daemon a folder of its own "
                                                           "(for example /var/lib/dstack-vmm/vm)");
  if (run == img)
    return make_error(ErrorCode::kInvalidArgument,
                      "run_path and [image] path are the same folder \"" + run.string() + "\"; give each its own");
  if (inside(run, img) || inside(img, run))
    return make_error(ErrorCode::kInvalidArgument, "run_path \"" + run.string() + "\" and [image] path \"" + img.string() +
                                                       "\" are nested; neither may lie inside the other");
  return {};
}

Status check_state_folders_resolved(const std::filesystem::path& run_path, const std::filesystem::path& image_path) {
  if (auto s = check_state_folders(run_path, image_path); !s.ok()) return s;
  std::error_code ec;
  auto run = std::filesystem::weakly_canonical(run_path, ec);
  if (ec) return {};  // nothing to resolve yet: the names were checked
  auto img = std::filesystem::weakly_canonical(image_path, ec);
  if (ec) return {};
  if (auto s = check_state_folders(run, img); !s.ok())
    return s.error().context("run_path \"" + run_path.string() + "\" and [image] path \"" + image_path.string() +
                             "\" resolve through symlinks");
  return {};
}

std::vector<ConfigDiagnostic> validate_config(const Config& config, std::string_view origin) {
  internal::TomlReport report{std::string(origin)};
  internal::validate_config(config, report);
  return std::move(report.diagnostics());
}

}  // namespace dstackvmm
