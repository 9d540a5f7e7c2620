// SPDX-License-Identifier: Apache-2.0
// vmm.toml parsing: defaults, the seed sample, every bad-config message, paths, round-trip.
#include <catch2/catch.hpp>

#include <dstackvmm/config.hpp>

#include "../support/test_paths.hpp"

using namespace dstackvmm;

namespace {

Result<Config> parse(std::string_view text, std::vector<ConfigDiagnostic>* diags = nullptr,
                     std::string origin = "vmm.toml", std::string base = "/etc/vmm") {
  ParseOptions o;
  o.origin = origin;
  o.base_dir = base;
  return parse_config(text, o, diags);
}

}  // namespace

TEST_CASE("an empty config has every upstream default", "[config]") {
  auto r = parse("");
  REQUIRE(r.ok());
  const Config& c = *r;
  CHECK(c.workers == 8);
  CHECK(c.max_blocking == 64);
  CHECK(c.ident == "dstack VMM");
  CHECK(c.temp_dir == "/tmp");
  CHECK(c.keep_alive == 10);
  CHECK(c.log_level == "debug");
  CHECK(c.address == "unix:/etc/vmm/vmm.sock");  // relative to the config's folder
  CHECK(c.port == 8000);
  CHECK(c.reuse);
  CHECK(c.kms_url == "http://127.0.0.1:8081");
  CHECK(c.event_buffer_size == 20);
  CHECK(c.node_name.empty());
  CHECK(c.run_path.empty());
  CHECK(c.image.path.empty());
  CHECK(c.image.registry.empty());

  const CvmConfig& v = c.cvm;
  CHECK(v.platform == Platform::kAuto);
  CHECK(v.accel == Accel::kAuto);
  CHECK(v.guest_channel == GuestChannelMode::kAuto);
  CHECK(v.qemu_path.empty());
  CHECK(v.kms_urls == std::vector<std::string>{"http://127.0.0.1:8081"});
  CHECK(v.gateway_urls == std::vector<std::string>{"http://127.0.0.1:8082"});
  CHECK(v.pccs_url.empty());
  CHECK_FALSE(v.tee_simulator);
  CHECK_FALSE(v.nvidia_attestation_proxy_url);
  CHECK(v.docker_registry.empty());
  CHECK(v.volumes_dir.empty());
  CHECK(v.cid_start == 1000);
  CHECK(v.cid_pool_size == 1000);
  CHECK(v.max_allocable_vcpu == 20);
  CHECK(v.max_allocable_memory_in_mb == 100000);
  CHECK(v.max_disk_size == 500);
  CHECK_FALSE(v.qmp_socket);
  CHECK(v.user.empty());
  CHECK(v.instance_id.empty());
  CHECK(v.use_mrconfigid);
  CHECK_FALSE(v.qemu_single_pass_add_pages);
  CHECK_FALSE(v.qemu_pic);
  CHECK_FALSE(v.qemu_version);
  CHECK(v.qemu_pci_hole64_size == 0);
  CHECK_FALSE(v.qemu_hotplug_off);
  CHECK(v.tdx_attestation_variant == "auto");
  CHECK(v.host_share_mode == "9p");
  CHECK(v.qgs_port == 4050u);
  CHECK(v.product.sys_vendor == "dstack");
  CHECK(v.product.product_name == "dstack");
  CHECK_FALSE(v.product.bios_vendor);
  CHECK_FALSE(v.product.chassis_asset_tag);
  CHECK(v.networking.mode == NetworkMode::kUser);
  CHECK(v.networking.net == "10.0.2.0/24");
  CHECK(v.networking.dhcp_start == "10.0.2.10");
  CHECK_FALSE(v.networking.restrict);
  CHECK(v.networking.bridge.empty());
  CHECK(v.networking.mac_prefix.empty());
  CHECK(v.networking.netdev.empty());
  CHECK(v.network_filter.mode == "none");
  CHECK(v.network_filter.filter == "clean-traffic");
  CHECK(v.network_filter.parameters.empty());
  CHECK_FALSE(v.port_mapping.enabled);
  CHECK(v.port_mapping.address == "127.0.0.1");
  CHECK(v.port_mapping.range == std::vector<PortRange>{{"tcp", 1, 20000}});
  CHECK(v.auto_restart.enabled);
  CHECK(v.auto_restart.interval == 20);
  CHECK(v.auto_restart.max_retries == 5);
  CHECK(v.auto_restart.initial_backoff == 5);
  CHECK(v.auto_restart.max_backoff == 300);
  CHECK(v.auto_restart.reset_window == 300);
  CHECK(v.log.max_bytes == 4u * 1024 * 1024);
  CHECK(v.log.max_backups == 3);
  CHECK(v.log.check_interval_secs == 5);
  CHECK_FALSE(v.gpu.enabled);
  CHECK(v.gpu.listing == std::vector<std::string>{"10de:2335"});
  CHECK(v.gpu.exclude.empty());
  CHECK(v.gpu.include.empty());
  CHECK(v.gpu.allow_attach_all);

  CHECK(c.netd.socket == "/run/dstack/netd.sock");
  CHECK(c.netd.allowed_uids.empty());
  CHECK(c.netd.libvirt_uri == "qemu:///system");
  CHECK(c.gateway.base_domain == "localhost");
  CHECK(c.gateway.port == 8082);
  CHECK(c.gateway.agent_port == 8090);
  CHECK_FALSE(c.auth.enabled);
  CHECK(c.auth.tokens.empty());
  CHECK(c.auth.htpasswd_file.empty());
  CHECK(c.supervisor.exe == "/etc/vmm/supervisor");
  CHECK(c.supervisor.sock == "/etc/vmm/run/supervisor.sock");
  CHECK(c.supervisor.pid_file == "/etc/vmm/run/supervisor.pid");
  CHECK(c.supervisor.log_file == "/etc/vmm/run/supervisor.log");
  CHECK_FALSE(c.supervisor.detached);
  CHECK(c.supervisor.auto_start);
  CHECK(c.host_api.ident == "dstack VMM");
  CHECK(c.host_api.address == "vsock:2");
  CHECK(c.host_api.port == 10000);
  CHECK(c.key_provider.enabled);
  CHECK(c.key_provider.address == "127.0.0.1");
  CHECK(c.key_provider.port == 3443);
}

TEST_CASE("the seed sample loads verbatim, without warnings", "[config]") {
  auto path = testing::data_dir() / "seed-vmm.toml";
  std::vector<ConfigDiagnostic> diags;
  auto r = load_config(path, &diags);
  INFO((r.ok() ? "" : r.error().message));
  REQUIRE(r.ok());
  CHECK(diags.empty());
  const Config& c = *r;
  auto dir = std::filesystem::absolute(path).lexically_normal().parent_path();
  CHECK(c.ident == "Dstack VMM");
  CHECK(c.log_level == "info");
  CHECK(c.address == "unix:" + (dir / "vmm.sock").string());
  CHECK(c.image.path == "/var/lib/dstack/images");  // deprecated image_path moves to [image]
  CHECK(c.run_path == "/var/lib/dstack/vms");
  CHECK(c.cvm.networking.mode == NetworkMode::kUser);  // the seed's top-level [networking]
  CHECK(c.cvm.qemu_path == "/usr/bin/qemu-system-x86_64");
  CHECK(c.cvm.max_disk_size == 500);
  CHECK(c.cvm.max_allocable_memory_in_mb == 100000);
  CHECK(c.cvm.pccs_url.empty());
  CHECK(c.cvm.auto_restart.interval == 20);
  CHECK(c.cvm.gpu.listing == std::vector<std::string>{"10de:2335"});
  CHECK(c.supervisor.exe == (dir / "supervisor").string());
  CHECK(c.supervisor.sock == (dir / "run/supervisor.sock").string());
  CHECK(c.host_api.ident == "Dstack VMM");
  CHECK(c.key_provider.enabled);
}

TEST_CASE("each bad config gives its exact message", "[config]") {
  struct Case {
    const char* toml;
    const char* message;
  };
  const Case cases[] = {
      {"[cvm]\ncid_start = \"x\"\n",
       "vmm.toml:2:13: cvm.cid_start: expected an integer, got string \"x\""},
      {"workers = true\n", "vmm.toml:1:11: workers: expected an integer, got boolean true"},
      {"[cvm]\ncid_start = -1\n",
       "vmm.toml:2:13: cvm.cid_start: expected an integer in 0..4294967295, got -1"},
      {"[cvm]\ncid_start = 2\n",
       "vmm.toml:2:13: cvm.cid_start: must be at least 3 (0-2 are reserved vsock CIDs)"},
      {"[cvm]\ncid_pool_size = 0\n", "vmm.toml:2:17: cvm.cid_pool_size: 0 is outside 1..1048576"},
      {"workers = 100000\n", "vmm.toml:1:11: workers: 100000 is outside 1..256"},
      {"address = \"0.0.0.0\"\n", "vmm.toml:1:11: address: 0.0.0.0:8000 is reachable from other hosts and [auth] is off: anyone who reaches it controls every VM. Enable [auth], listen on 127.0.0.1 or a unix socket, or set allow_insecure_remote = true if this is really meant"},
      {"run_path = \"/\"\n[image]\npath = \"/srv/i\"\n", "vmm.toml:1:12: run_path: run_path \"/\" is a system folder; give the daemon a folder of its own (for example /var/lib/dstack-vmm/vm)"},
      {"[cvm]\ncid_start = 4294967000\ncid_pool_size = 1000\n",
       "vmm.toml:3:17: cvm.cid_pool_size: cid_start 4294967000 + cid_pool_size 1000 overflows 32 bits"},
      {"[cvm.port_mapping]\nrange = [{ protocol = \"tcp\", from = 200, to = 100 }]\n",
       "vmm.toml:2:10: cvm.port_mapping.range[0]: range start 200 exceeds end 100"},
      {"[cvm.port_mapping]\nrange = [{ protocol = \"sctp\", from = 1, to = 2 }]\n",
       "vmm.toml:2:23: cvm.port_mapping.range[0].protocol: \"sctp\" is not one of tcp, udp"},
      {"[cvm.port_mapping]\nrange = [{ protocol = \"tcp\", from = 0, to = 70000 }]\n",
       "vmm.toml:2:37: cvm.port_mapping.range[0].from: 0 is not a port in 1..65535\n"
       "vmm.toml:2:45: cvm.port_mapping.range[0].to: 70000 is not a port in 1..65535"},
      {"[cvm]\nmax_allocable_vcpu = 0\n",
       "vmm.toml:2:22: cvm.max_allocable_vcpu: must be greater than zero"},
      {"[cvm]\nmax_allocable_memory_in_mb = 0\n",
       "vmm.toml:2:30: cvm.max_allocable_memory_in_mb: must be greater than zero"},
      {"[cvm]\nmax_disk_size = 0\n", "vmm.toml:2:17: cvm.max_disk_size: must be greater than zero"},
      {"address = \"nonsense\"\n",
       "vmm.toml:1:11: address: 'nonsense' is not an IP address (expected unix:PATH, an IP "
       "address with `port`, or HOST:PORT)"},
      {"address = \"127.0.0.1:99999\"\n",
       "vmm.toml:1:11: address: invalid port '99999' in '127.0.0.1:99999'"},
      {"address = \"127.0.0.1\"\nport = 0\n", "vmm.toml:1:11: address: port 0 is not in 1..65535"},
      {"[cvm]\nplatform = \"tdxx\"\n",
       "vmm.toml:2:12: cvm.platform: \"tdxx\" is not one of auto, tdx, amd-sev-snp, none (did you "
       "mean tdx?)"},
      {"[cvm]\naccel = \"hvf\"\n", "vmm.toml:2:9: cvm.accel: \"hvf\" is not one of auto, kvm, tcg"},
      {"[cvm]\nhost_share_mode = \"unknown\"\n",
       "vmm.toml:2:19: cvm.host_share_mode: \"unknown\" is not one of 9p, vhd, vvfat"},
      {"[cvm.networking]\nmac_prefix = \"02:not-hex\"\n",
       "vmm.toml:2:14: cvm.networking.mac_prefix: \"02:not-hex\" must contain 1 to 3 two-digit "
       "hexadecimal bytes"},
      {"[cvm.networking]\nmode = \"bridge\"\n",
       "vmm.toml: cvm.networking.bridge: must not be empty in bridge mode"},
      {"[cvm]\nkms_urls = [\"not a URL\"]\n",
       "vmm.toml:2:12: cvm.kms_urls: \"not a URL\" is not a valid URL"},
      {"[cvm]\nkms_urls = [\"ftp://kms\"]\n",
       "vmm.toml:2:12: cvm.kms_urls: URL must use http or https: ftp://kms"},
      {"[supervisor]\nsock = \"\"\n", "vmm.toml:2:8: supervisor.sock: must not be empty"},
      {"[host_api]\naddress = \"vsock:not-a-cid\"\n",
       "vmm.toml:2:11: host_api.address: contains an invalid CID: 'not-a-cid'"},
      {"[host_api]\naddress = \"tcp:1.2.3.4\"\n",
       "vmm.toml:2:11: host_api.address: must be a vsock address (e.g. 'vsock:2'), got 'tcp:1.2.3.4'"},
      {"[cvm.auto_restart]\ninterval = 0\n",
       "vmm.toml:2:12: cvm.auto_restart.interval: must be greater than zero when enabled"},
      {"[cvm.auto_restart]\ninitial_backoff = 0\n",
       "vmm.toml:2:19: cvm.auto_restart.initial_backoff: must be greater than zero when enabled"},
      {"[cvm.auto_restart]\ninitial_backoff = 6\nmax_backoff = 5\n",
       "vmm.toml:3:15: cvm.auto_restart.max_backoff: initial_backoff 6 must not exceed max_backoff 5"},
      {"[cvm.log]\nmax_bytes = \"4X\"\n",
       "vmm.toml:2:13: cvm.log.max_bytes: expected a size like 4194304, \"512K\", \"4M\" or \"1G\", "
       "got string \"4X\""},
      {"[cvm]\nkms_urls = \"http://x\"\n",
       "vmm.toml:2:12: cvm.kms_urls: expected an array of strings, got string \"http://x\""},
      {"cvm = 3\n", "vmm.toml:1:7: cvm: expected a table, got integer 3"},
      {"[cvm.port_mapping]\naddress = \"localhost\"\n",
       "vmm.toml:2:11: cvm.port_mapping.address: \"localhost\" is not an IP address"},
      {"log_level = \"verbose\"\n",
       "vmm.toml:1:13: log_level: \"verbose\" is not one of trace, debug, info, warn, error"},
      {"workers = \n", "vmm.toml:1:11: Error while parsing key-value pair: expected value, saw '\\n'"},
      {"max_blocking = 0\n", "vmm.toml:1:16: max_blocking: 0 is outside 1..1024"},
      {"[cvm.network_filter]\nmode = \"libvirt\"\n",
       "vmm.toml:2:8: cvm.network_filter.mode: \"libvirt\" (nwfilter rules on bridged VMs through dstack-netd) is not "
       "supported by this daemon; bridged VMs use QEMU's bridge helper without a filter. Set mode = \"none\" or remove "
       "[cvm.network_filter]"},
      {"[cvm.tee_simulator]\nplatform = \"sgx\"\n",
       "vmm.toml:2:12: cvm.tee_simulator.platform: \"sgx\" is not one of dstack-tdx, dstack-gcp-tdx, dstack-nitro-enclave, "
       "dstack-amd-sev-snp, dstack-aws-nitro-tpm"},
  };
  for (const auto& c : cases) {
    INFO(c.toml);
    auto r = parse(c.toml);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(r.error().message == c.message);
  }
}

TEST_CASE("keys upstream would not use either are named in warnings", "[config]") {
  std::vector<ConfigDiagnostic> diags;
  auto r = parse("temp_dir = \"/var/tmp\"\n[cvm.network_filter]\nfilter = \"no-spoofing\"\n[netd]\nsocket = \"/run/n.sock\"\n", &diags);
  REQUIRE(r.ok());
  std::string all;
  for (const auto& d : diags) {
    CHECK(d.severity == ConfigDiagnostic::Severity::kWarning);
    all += d.to_string() + "\n";
  }
  INFO(all);
  CHECK(diags.size() == 3);
  CHECK(all.find("temp_dir: warning: is where Rocket buffers uploaded files") != std::string::npos);
  CHECK(all.find("cvm.network_filter: warning: filter and parameters take effect only with mode = \"libvirt\"") != std::string::npos);
  CHECK(all.find("netd: warning: [netd] is used only by [cvm.network_filter] mode = \"libvirt\"") != std::string::npos);
  // The defaults, written out as the seed does, warn about nothing.
  diags.clear();
  REQUIRE(parse("temp_dir = \"/tmp\"\nmax_blocking = 64\nkeep_alive = 10\n[cvm.network_filter]\nmode = \"none\"\n", &diags).ok());
  CHECK(diags.empty());
}

TEST_CASE("every problem is reported, not just the first", "[config]") {
  auto r = parse("workers = 0\n[cvm]\ncid_start = 1\nmax_disk_size = 0\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "vmm.toml:1:11: workers: 0 is outside 1..256\n"
        "vmm.toml:3:13: cvm.cid_start: must be at least 3 (0-2 are reserved vsock CIDs)\n"
        "vmm.toml:4:17: cvm.max_disk_size: must be greater than zero");
}

TEST_CASE("an unknown key is a warning naming the closest known key", "[config]") {
  std::vector<ConfigDiagnostic> diags;
  auto r = parse("[cvm]\ncid_strat = 5\nzzzzzz = 1\n", &diags);
  REQUIRE(r.ok());
  REQUIRE(diags.size() == 2);
  CHECK(diags[0].to_string() == "vmm.toml:2:1: cvm.cid_strat: warning: unknown key (did you mean cid_start?)");
  CHECK(diags[1].to_string() == "vmm.toml:3:1: cvm.zzzzzz: warning: unknown key");
}

TEST_CASE("[networking] and [cvm.networking] merge, [cvm.networking] winning", "[config]") {
  std::vector<ConfigDiagnostic> diags;
  auto r = parse("[networking]\nmode = \"bridge\"\nbridge = \"br0\"\nnet = \"10.1.0.0/24\"\n"
                 "[cvm.networking]\nbridge = \"virbr0\"\n",
                 &diags);
  REQUIRE(r.ok());
  CHECK(r->cvm.networking.mode == NetworkMode::kBridge);
  CHECK(r->cvm.networking.bridge == "virbr0");
  CHECK(r->cvm.networking.net == "10.1.0.0/24");
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].message.find("[cvm.networking] win") != std::string::npos);
}

TEST_CASE("relative paths resolve against the config's folder", "[config]") {
  auto r = parse(R"(
address = "unix:../run/vmm.sock"
run_path = "vms"
temp_dir = "/var/tmp"
[image]
path = "./images"
[cvm]
qemu_path = "qemu-system-x86_64"
[auth]
htpasswd_file = "htpasswd"
[supervisor]
exe = "bin/supervisor"
)",
                 nullptr, "vmm.toml", "/srv/dstack/etc");
  REQUIRE(r.ok());
  CHECK(r->address == "unix:/srv/dstack/run/vmm.sock");
  CHECK(r->run_path == "/srv/dstack/etc/vms");
  CHECK(r->temp_dir == "/var/tmp");
  CHECK(r->image.path == "/srv/dstack/etc/images");
  CHECK(r->cvm.qemu_path == "qemu-system-x86_64");  // bare names stay PATH lookups
  CHECK(r->auth.htpasswd_file == "/srv/dstack/etc/htpasswd");
  CHECK(r->supervisor.exe == "/srv/dstack/etc/bin/supervisor");
}

TEST_CASE("deprecated image_path yields to [image] path", "[config]") {
  std::vector<ConfigDiagnostic> diags;
  auto r = parse("image_path = \"/a\"\n[image]\npath = \"/b\"\n", &diags);
  REQUIRE(r.ok());
  CHECK(r->image.path == "/b");
  REQUIRE(diags.size() == 1);
  CHECK(diags[0].to_string() == "vmm.toml:1:14: image_path: warning: deprecated; [image] path is also set and wins");
}

TEST_CASE("human sizes and the tproxy_urls alias", "[config]") {
  auto r = parse("[cvm]\nqemu_pci_hole64_size = \"1G\"\ntproxy_urls = [\"https://gw\"]\n[cvm.log]\nmax_bytes = \"512K\"\n");
  REQUIRE(r.ok());
  CHECK(r->cvm.qemu_pci_hole64_size == (1ull << 30));
  CHECK(r->cvm.log.max_bytes == 512u * 1024);
  CHECK(r->cvm.gateway_urls == std::vector<std::string>{"https://gw"});
}

TEST_CASE("print_config round-trips through the parser unchanged", "[config]") {
  SECTION("defaults") {
    Config c = *parse("");
    CHECK(*parse(print_config(c)) == c);
  }
  SECTION("the seed sample") {
    Config c = *load_config(testing::data_dir() / "seed-vmm.toml");
    CHECK(*parse(print_config(c)) == c);
  }
  SECTION("every optional set") {
    auto r = parse(R"(
node_name = "n1"
[cvm]
platform = "tdx"
nvidia_attestation_proxy_url = "http://nv:1"
qemu_single_pass_add_pages = true
qemu_pic = false
qemu_version = "8.2.2"
qgs_port = 4051
[cvm.tee_simulator]
platform = "dstack-tdx"
quote = "abc"
[cvm.product]
bios_vendor = "acme \"quoted\""
chassis_asset_tag = "tag"
[cvm.network_filter]
mode = "none"
parameters = { a = "1" }
[cvm.port_mapping]
range = [{ protocol = "udp", from = 5, to = 6 }, { protocol = "tcp", from = 7, to = 8 }]
[netd]
allowed_uids = [0, 1000]
[auth]
enabled = true
tokens = ["t1", "t2"]
)");
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    Config c = *r;
    auto again = parse(print_config(c));
    INFO(print_config(c));
    REQUIRE(again.ok());
    CHECK(*again == c);
  }
}

TEST_CASE("the embedded development profile is valid and self-contained", "[config]") {
  ParseOptions o;
  o.base_dir = "/home/dev/checkout";
  std::vector<ConfigDiagnostic> diags;
  auto r = parse_config(embedded_dev_config(), o, &diags);
  INFO((r.ok() ? "" : r.error().message));
  REQUIRE(r.ok());
  CHECK(diags.empty());
  CHECK(r->address == "127.0.0.1");
  CHECK(r->port == 8080);
  CHECK(r->cvm.platform == Platform::kNone);
  CHECK(r->cvm.accel == Accel::kTcg);
  CHECK(r->run_path == "/home/dev/checkout/.dstack-vmm/vms");
  CHECK(r->image.path == "/home/dev/checkout/.dstack-vmm/images");
}

TEST_CASE("validate_config reports problems of a hand-built Config", "[config]") {
  Config c;
  c.cvm.cid_pool_size = 0;
  c.cvm.port_mapping.range = {{"tcp", 9, 3}};
  auto diags = validate_config(c, "api");
  REQUIRE(diags.size() == 2);
  CHECK(diags[0].to_string() == "api: cvm.cid_pool_size: 0 is outside 1..1048576");
  CHECK(diags[1].to_string() == "api: cvm.port_mapping.range[0]: range start 9 exceeds end 3");
}

TEST_CASE("TOML that would drive the parser into deep recursion is refused before parsing", "[config]") {
  std::string dotted;
  for (int i = 0; i < 100000; ++i) dotted += "a.";
  auto deep_key = parse(dotted + "b = 1\n");  // toml++ recursed once per part: a stack overflow
  REQUIRE_FALSE(deep_key.ok());
  CHECK(deep_key.error().message == "vmm.toml:1:64: a key of more than 32 dotted parts");
  auto deep_array = parse("workers = " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  REQUIRE_FALSE(deep_array.ok());
  CHECK(deep_array.error().message == "vmm.toml:1:43: nested deeper than 32 arrays or tables");
  CHECK(parse("x = { y = { z = [[1, 2.5], ['a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g']] } }\n# a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g\n")
            .ok());  // dots in strings and comments are not key parts (x is only warned about)
  CHECK(parse(std::string((1 << 20) + 1, '#')).error().message == "vmm.toml: larger than 1024 KiB");
}
