// SPDX-License-Identifier: Apache-2.0
// What operators type: sizes, port specs, env files, and the app-compose.json `compose` writes.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <dstackvmm/client/client_config.hpp>
#include <dstackvmm/client/deploy_spec.hpp>
#include <dstackvmm/client/env_crypto.hpp>

#include "../support/test_paths.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("memory sizes: MB by default, M/G/T with or without B, decimals that end whole", "[client]") {
  CHECK(*parse_memory_mb("1024") == 1024);
  CHECK(*parse_memory_mb("512M") == 512);
  CHECK(*parse_memory_mb("512mb") == 512);
  CHECK(*parse_memory_mb("2G") == 2048);
  CHECK(*parse_memory_mb("2GB") == 2048);
  CHECK(*parse_memory_mb("1.5G") == 1536);
  CHECK(*parse_memory_mb("1T") == 1048576);
  for (const char* bad : {"", "G", "-1G", "1.3M", "2X", "1..5G", "1 G", "99999999999999999999T"}) {
    INFO(bad);
    auto r = parse_memory_mb(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(r.error().message.find("memory size '" + std::string(bad) + "'") == 0);
  }
  CHECK(parse_memory_mb("1.3M").error().message == "memory size '1.3M': is not a whole number of MB");
}

TEST_CASE("disk sizes: GB by default, G/T; megabytes are refused", "[client]") {
  CHECK(*parse_disk_gb("20") == 20);
  CHECK(*parse_disk_gb("20G") == 20);
  CHECK(*parse_disk_gb("1TB") == 1024);
  CHECK(*parse_disk_gb("0.5T") == 512);
  CHECK_FALSE(parse_disk_gb("512M").ok());
  CHECK_FALSE(parse_disk_gb("1.5G").ok());
  CHECK(parse_disk_gb("512M").error().message == "disk size '512M': unknown unit 'M' (use G, GB, T or TB)");
}

TEST_CASE("port specs: three or four parts, IPv4 or IPv6, checked ports and protocol", "[client]") {
  auto p = *parse_port_spec("tcp:8080:80");
  CHECK(p == PortMapping{"tcp", "127.0.0.1", 8080, 80});
  CHECK(*parse_port_spec("udp:0.0.0.0:53:5353") == PortMapping{"udp", "0.0.0.0", 53, 5353});
  CHECK(*parse_port_spec("tcp:[::1]:8080:80") == PortMapping{"tcp", "::1", 8080, 80});
  CHECK(*parse_port_spec("tcp:::1:8080:80") == PortMapping{"tcp", "::1", 8080, 80});
  CHECK(format_port_spec(*parse_port_spec("tcp:::1:8080:80")) == "tcp:[::1]:8080:80");
  CHECK(format_port_spec(p) == "tcp:127.0.0.1:8080:80");
  for (const char* bad : {"8080:80", "tcp:8080", "sctp:1:2", "tcp:0:80", "tcp:70000:80", "tcp:80:x", "tcp:host:1:2", "tcp::1:2", ""}) {
    INFO(bad);
    auto r = parse_port_spec(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("port spec '" + std::string(bad) + "'") == 0);
  }
}

TEST_CASE("env files: KEY=VALUE, split at the first =, trimmed; comments and blanks skipped", "[client]") {
  auto env = *parse_env_file("# c\n\nA = 1\nB=x=y\r\n  C=  \n");
  CHECK(env == std::vector<EnvVar>{{"A", "1"}, {"B", "x=y"}, {"C", ""}});
  CHECK(parse_env_file("A=1\nnope\n").error().message == "env file line 2: expected KEY=VALUE");
  CHECK(parse_env_file("=1").error().message == "env file line 1: the key is empty");
  CHECK(env_plaintext({{"K", "V"}, {"Q", "\"x\""}}) == R"({"env":[{"key":"K","value":"V"},{"key":"Q","value":"\"x\""}]})");
}

TEST_CASE("compose: every option, in spec section 9's order, byte for byte as upstream writes it", "[client]") {
  auto dir = testing::source_root() / "tests/data/compose";
  ComposeOptions o;
  o.name = "shop";
  o.docker_compose_file = slurp(dir / "docker-compose.yaml");
  o.pre_launch_script = slurp(dir / "prelaunch.sh");
  o.kms = o.gateway = o.public_logs = o.secure_time = true;
  o.key_provider = "kms";
  o.key_provider_id = "abcd";
  for (const auto& e : *parse_env_file(slurp(dir / "app.env"))) o.allowed_envs.push_back(e.key);
  o.swap_bytes = uint64_t{*parse_memory_mb("2G")} << 20;
  o.event_log_version = 2;
  auto text = build_app_compose(o);
  REQUIRE(text.ok());
  CHECK(*text == slurp(testing::source_root() / "tests/data/golden/app-compose.json"));
  CHECK(sha256_hex(*text).size() == 64);

  ComposeOptions plain;
  plain.name = "basic";
  auto basic = nlohmann::ordered_json::parse(*build_app_compose(plain));
  std::vector<std::string> keys;
  for (auto& [k, _] : basic.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"manifest_version", "name", "runner", "docker_compose_file", "kms_enabled",
                                         "gateway_enabled", "local_key_provider_enabled", "key_provider_id", "public_logs",
                                         "public_sysinfo", "allowed_envs", "no_instance_id", "secure_time"});
  plain.key_provider = "vault";
  CHECK(build_app_compose(plain).error().message == "key provider 'vault': use none, kms, local or tpm");
  plain.key_provider = "kms";
  plain.key_provider_id = "0xabcd";  // the VMM reads plain hex only (upstream's parser)
  CHECK(build_app_compose(plain).error().message == "key provider id '0xabcd': use hex digits (an even number, without 0x)");
}

TEST_CASE("daemon URL: flag, env, config, active daemon, the only daemon, default", "[client]") {
  ClientConfigFile none;
  std::vector<RunningDaemon> one{{.id = "abc-1", .pid = 1, .address = "unix:vmm.sock", .url = "unix:/w/vmm.sock"}};
  std::vector<RunningDaemon> two = one;
  two.push_back({.id = "def-2", .pid = 2, .address = "127.0.0.1:9", .url = "http://127.0.0.1:9"});
  CHECK(resolve_daemon_url("http://a:1", "http://b:2", {.url = "http://c:3"}, two).url == "http://a:1");
  CHECK(resolve_daemon_url(std::nullopt, "http://b:2", {.url = "http://c:3"}, two).source == "DSTACK_VMM_URL");
  CHECK(resolve_daemon_url(std::nullopt, std::nullopt, {.url = "http://c:3"}, two).url == "http://c:3");
  CHECK(resolve_daemon_url(std::nullopt, std::nullopt, {.active_vmm = "def"}, two).url == "http://127.0.0.1:9");
  CHECK(resolve_daemon_url(std::nullopt, std::nullopt, none, one).url == "unix:/w/vmm.sock");
  CHECK(resolve_daemon_url(std::nullopt, std::nullopt, none, two).url == "http://localhost:8080");
}
