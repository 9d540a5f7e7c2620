// SPDX-License-Identifier: Apache-2.0
// vmm.toml as a typed value: every key of the upstream reference with its default.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// The config's closed sets, typed; read and written as upstream's strings (to_string and the
// parse_* functions, which return nullopt for anything else).
enum class Platform { kAuto, kTdx, kAmdSevSnp, kNone };   // auto | tdx | amd-sev-snp | none
enum class Accel { kAuto, kKvm, kTcg };                   // auto | kvm | tcg
enum class GuestChannelMode { kAuto, kVsock, kUserNet };  // auto | vsock | user-net
enum class NetworkMode { kUser, kBridge, kCustom };       // user | bridge | custom

DSTACKVMM_EXPORT std::string_view to_string(Platform value);
DSTACKVMM_EXPORT std::string_view to_string(Accel value);
DSTACKVMM_EXPORT std::string_view to_string(GuestChannelMode value);
DSTACKVMM_EXPORT std::string_view to_string(NetworkMode value);
DSTACKVMM_EXPORT std::optional<Platform> parse_platform(std::string_view text);
DSTACKVMM_EXPORT std::optional<Accel> parse_accel(std::string_view text);
DSTACKVMM_EXPORT std::optional<GuestChannelMode> parse_guest_channel(std::string_view text);
DSTACKVMM_EXPORT std::optional<NetworkMode> parse_network_mode(std::string_view text);

// [image]
struct DSTACKVMM_EXPORT ImageConfig {
  std::string path;      // [image] path (or deprecated top-level image_path). Default: ~/.dstack-vmm/image
  std::string registry;  // OCI repository for PullRegistryImage. Default: "" (pulls disabled)
  uint32_t max_unpacked_mb = 16384;  // ours: the most one pulled image may unpack to
  bool operator==(const ImageConfig&) const = default;
};

// [cvm.networking] (also accepted as a top-level [networking] table, as the seed sample writes it)
struct DSTACKVMM_EXPORT NetworkingConfig {
  NetworkMode mode = NetworkMode::kUser;
  std::string net = "10.0.2.0/24";
  std::string dhcp_start = "10.0.2.10";
  bool restrict = false;
  std::string bridge;      // bridge mode: host bridge, e.g. virbr0
  std::string mac_prefix;  // 0-3 colon-separated hex bytes
  std::string netdev;      // custom mode: full -netdev value
  bool operator==(const NetworkingConfig&) const = default;
};

// [cvm.network_filter]
struct DSTACKVMM_EXPORT NetworkFilterConfig {
  std::string mode = "none";  // none | libvirt
  std::string filter = "clean-traffic";
  std::map<std::string, std::string> parameters;
  bool operator==(const NetworkFilterConfig&) const = default;
};

// One entry of [cvm.port_mapping] range.
struct DSTACKVMM_EXPORT PortRange {
  std::string protocol = "tcp";  // tcp | udp
  uint32_t from = 1;
  uint32_t to = 20000;
  bool operator==(const PortRange&) const = default;
};

// [cvm.port_mapping]
struct DSTACKVMM_EXPORT PortMappingConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";  // default host bind address for mappings without one
  std::vector<PortRange> range{PortRange{}};
  bool operator==(const PortMappingConfig&) const = default;
};

// [cvm.auto_restart]; all times in seconds.
struct DSTACKVMM_EXPORT AutoRestartConfig {
  bool enabled = true;
  uint64_t interval = 20;
  uint32_t max_retries = 5;
  uint64_t initial_backoff = 5;
  uint64_t max_backoff = 300;
  uint64_t reset_window = 300;
  bool operator==(const AutoRestartConfig&) const = default;
};

// [cvm.log]: rotation of serial/stdout/stderr logs.
struct DSTACKVMM_EXPORT LogRotationConfig {
  uint64_t max_bytes = 4 * 1024 * 1024;  // "4M"; 0 disables rotation. Accepts human sizes (K/M/G).
  uint32_t max_backups = 3;
  uint64_t check_interval_secs = 5;
  bool operator==(const LogRotationConfig&) const = default;
};

// [cvm.gpu]
struct DSTACKVMM_EXPORT GpuConfig {
  bool enabled = false;
  std::vector<std::string> listing{"10de:2335"};  // vendor:device ids to offer
  std::vector<std::string> exclude;                // PCI slots never offered
  std::vector<std::string> include;                // when non-empty, only these slots
  bool allow_attach_all = true;
  bool operator==(const GpuConfig&) const = default;
};

// [cvm.product]: SMBIOS strings; unset fields are left out of -smbios.
struct DSTACKVMM_EXPORT ProductConfig {
  std::optional<std::string> bios_vendor, bios_version, bios_date, bios_release;
  std::optional<std::string> sys_vendor = "dstack", product_name = "dstack";
  std::optional<std::string> product_version, product_serial, product_uuid, product_family,
      product_sku;
  std::optional<std::string> board_vendor, board_name, board_version, board_serial,
      board_asset_tag;
  std::optional<std::string> chassis_vendor, chassis_version, chassis_serial, chassis_asset_tag;
  bool operator==(const ProductConfig&) const = default;
};

// [cvm.tee_simulator]: what a simulated-TEE guest (VmConfiguration::simulated_tee) gets in its
// .tee-simulator.json, besides the per-VM values the VMM fills in.
struct DSTACKVMM_EXPORT TeeSimulatorConfig {
  // dstack-tdx | dstack-gcp-tdx | dstack-nitro-enclave | dstack-amd-sev-snp |
  // dstack-aws-nitro-tpm. Each VM's own simulated_tee replaces it in the file.
  std::string platform = "dstack-tdx";
  std::optional<std::string> mock_attestation_seed;  // 64 hex digits, passed through unchecked
  std::optional<std::string> collateral_base_url;
  bool operator==(const TeeSimulatorConfig&) const = default;
};

// [cvm]
struct DSTACKVMM_EXPORT CvmConfig {
  Platform platform = Platform::kAuto;  // kNone is ours: every VM without TEE
  Accel accel = Accel::kAuto;           // ours; auto = kvm only with vmx/svm and /dev/kvm
  GuestChannelMode guest_channel = GuestChannelMode::kAuto;  // ours; auto = vsock iff /dev/vhost-vsock
  std::string qemu_path;          // "" = find qemu-system-x86_64 at start
  std::vector<std::string> kms_urls{"http://127.0.0.1:8081"};
  std::vector<std::string> gateway_urls{"http://127.0.0.1:8082"};  // alias: tproxy_urls
  std::string pccs_url;
  std::optional<TeeSimulatorConfig> tee_simulator;  // present (even empty): simulated TEEs allowed
  std::optional<std::string> nvidia_attestation_proxy_url;
  std::string docker_registry;
  std::string volumes_dir;  // verity volumes' files ("" = composes with verity_volumes are refused)
  uint32_t cid_start = 1000;
  uint32_t cid_pool_size = 1000;
  uint32_t max_allocable_vcpu = 20;               // enforced per VM
  uint32_t max_allocable_memory_in_mb = 100000;   // enforced per VM
  uint32_t max_disk_size = 500;                   // GB per VM, enforced
  bool qmp_socket = false;
  std::string user;
  std::string instance_id;
  bool use_mrconfigid = true;
  std::optional<bool> qemu_single_pass_add_pages;
  std::optional<bool> qemu_pic;
  std::optional<std::string> qemu_version;  // for vm_config; unset = `qemu_path --version`
  uint64_t qemu_pci_hole64_size = 0;  // human size
  bool qemu_hotplug_off = false;
  std::string tdx_attestation_variant = "auto";  // auto | legacy | lite
  std::string host_share_mode = "9p";            // 9p | vhd | vvfat
  std::optional<uint32_t> qgs_port = 4050;
  ProductConfig product;
  NetworkingConfig networking;
  NetworkFilterConfig network_filter;
  PortMappingConfig port_mapping;
  AutoRestartConfig auto_restart;
  LogRotationConfig log;
  GpuConfig gpu;
  bool operator==(const CvmConfig&) const = default;
};

// [netd]
struct NetdConfig {
  std::string socket = "/run/dstack/netd.sock";
  std::vector<uint32_t> allowed_uids;
  std::string libvirt_uri = "qemu:///system";
  bool operator==(const NetdConfig&) const = default;
};

// [gateway]
struct GatewayConfig {
  std::string base_domain = "localhost";
  uint32_t port = 8082;
  uint32_t agent_port = 8090;
  bool operator==(const GatewayConfig&) const = default;
};

// [auth]
struct AuthConfig {
  bool enabled = false;
  std::vector<std::string> tokens;
  std::string htpasswd_file;
  bool operator==(const AuthConfig&) const = default;
};

// [supervisor]
struct SupervisorConfig {
  std::string exe = "./supervisor";
  std::string sock = "./run/supervisor.sock";
  std::string pid_file = "./run/supervisor.pid";
  std::string log_file = "./run/supervisor.log";
  bool detached = false;
  bool auto_start = true;
  bool operator==(const SupervisorConfig&) const = default;
};

// [host_api]
struct HostApiConfig {
  std::string ident = "dstack VMM";
  std::string address = "vsock:2";
  uint32_t port = 10000;
  bool operator==(const HostApiConfig&) const = default;
};

// [key_provider]
struct KeyProviderConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";
  uint32_t port = 3443;
  bool operator==(const KeyProviderConfig&) const = default;
};

// The whole vmm.toml. Defaults are the upstream reference's (dstack v0.6.0 vmm.toml).
struct Config {
  uint32_t workers = 8;
  uint32_t max_blocking = 64;
  std::string ident = "dstack VMM";
  std::string temp_dir = "/tmp";
  uint32_t keep_alive = 10;
  std::string log_level = "debug";  // trace | debug | info | warn | error
  std::string address = "unix:./vmm.sock";  // unix:PATH, an IP (with `port`), or HOST:PORT
  uint32_t port = 8000;
  // Ours: serving on a non-loopback address with [auth] off hands every VM to whoever can
  // reach the port, so it is refused at load unless this says it is meant.
  bool allow_insecure_remote = false;
  // Ours: host names (besides IP addresses, localhost and this machine's name) the API is
  // reached by, e.g. behind a reverse proxy. Any other Host header is refused, so that a web
  // page cannot reach the API through DNS rebinding.
  std::vector<std::string> allowed_hosts;
  bool reuse = true;
  std::string kms_url = "http://127.0.0.1:8081";
  uint32_t event_buffer_size = 20;
  std::string node_name;
  std::string run_path;  // "" = ~/.dstack-vmm/vm
  ImageConfig image;
  CvmConfig cvm;
  NetdConfig netd;
  GatewayConfig gateway;
  AuthConfig auth;
  SupervisorConfig supervisor;
  HostApiConfig host_api;
  KeyProviderConfig key_provider;
  bool operator==(const Config&) const = default;
};

// One problem found while reading a config: an error stops the load, a warning does not.
struct DSTACKVMM_EXPORT ConfigDiagnostic {
  enum class Severity { kWarning, kError };
  Severity severity = Severity::kError;
  std::string origin;  // file name as given, or "<embedded>"
  uint32_t line = 0;   // 1-based; 0 when the problem has no position (a missing key)
  uint32_t column = 0;
  std::string key;      // dotted path, e.g. "cvm.cid_start"
  std::string message;  // e.g. `expected an integer, got string "x"`

  // "vmm.toml:14:9: cvm.cid_start: expected an integer, got string \"x\""
  std::string to_string() const;
};

struct ParseOptions {
  std::string origin = "<embedded>";    // names the text in diagnostics
  std::filesystem::path base_dir = ".";  // relative paths in the config resolve against this
};

// Parses and validates vmm.toml text over the upstream defaults (or over `base`).
// Every problem is reported, not just the first: on failure the Error's message holds one
// diagnostic per line (kInvalidArgument). Warnings (unknown keys, [networking] vs
// [cvm.networking]) go to `diagnostics` when given. Pure: touches no file.
DSTACKVMM_EXPORT Result<Config> parse_config(std::string_view toml, const ParseOptions& options,
                            std::vector<ConfigDiagnostic>* diagnostics = nullptr,
                            const Config& base = Config{});

// Reads `path` and parses it with origin = path as given and base_dir = its folder.
DSTACKVMM_EXPORT Result<Config> load_config(const std::filesystem::path& path,
                           std::vector<ConfigDiagnostic>* diagnostics = nullptr);

// The semantic checks alone (ranges, addresses, enums). Returns one diagnostic per problem.
DSTACKVMM_EXPORT std::vector<ConfigDiagnostic> validate_config(const Config& config, std::string_view origin);

// The effective config as TOML; parse_config(print_config(c)) == c.
DSTACKVMM_EXPORT std::string print_config(const Config& config);

// The config the daemon runs on when no file is given: upstream defaults plus a
// self-contained development profile (TCP 127.0.0.1:8080, platform none, TCG, state under
// `state_dir`). Relative paths in it resolve against the current directory.
DSTACKVMM_EXPORT std::string_view embedded_dev_config();

// run_path and [image] path must be folders the daemon may own: not `/` or a system folder,
// not the same folder, not one inside the other (at start-up the daemon deletes unfinished
// VM folders under run_path, and DeleteImage removes folders under the image path). Checks
// the names as given, made absolute; touches no file.
DSTACKVMM_EXPORT Status check_state_folders(const std::filesystem::path& run_path, const std::filesystem::path& image_path);
// The same, then on the folders as they resolve on disk: a symlink must not smuggle in `/`.
DSTACKVMM_EXPORT Status check_state_folders_resolved(const std::filesystem::path& run_path,
                                                     const std::filesystem::path& image_path);

// Fills what depends on the host: empty image path / run_path become ~/.dstack-vmm/{image,vm}.
// Not part of parsing so tests stay pure.
DSTACKVMM_EXPORT Status resolve_home_defaults(Config& config);

}  // namespace dstackvmm
