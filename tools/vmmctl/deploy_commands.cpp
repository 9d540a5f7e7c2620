// SPDX-License-Identifier: Apache-2.0
// compose, deploy and the update commands: what changes what a VM runs.
#include <fstream>
#include <iostream>

#include <dstackvmm/client/deploy_spec.hpp>
#include <dstackvmm/client/env_crypto.hpp>

#include "cli.hpp"
#include "env_key.hpp"
#include "wait.hpp"

namespace vmmctl {

namespace dc = dstackvmm::client;

namespace {

using dc::sha256_hex;

std::vector<dc::EnvVar> read_env(const std::string& path) { return must(dc::parse_env_file(read_text_file(path, "env file"))); }

std::vector<dstackvmm::PortMapping> parse_ports(const std::vector<std::string>& specs) {
  std::vector<dstackvmm::PortMapping> out;
  for (const auto& s : specs) out.push_back(must(dc::parse_port_spec(s)));
  return out;
}

// The compose as an ordered object, so a rewrite keeps its key order.
nlohmann::ordered_json parse_compose(const std::string& text, const std::string& what) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (!j.is_object()) fail(ErrorCode::kInvalidArgument, what + " is not a JSON object (an app-compose.json)");
  return j;
}
std::string dump_compose(const nlohmann::ordered_json& j) { return j.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace); }

struct ComposeFlags {
  dc::ComposeOptions o;
  std::string docker_compose, prelaunch, env_file, swap, output;
  uint32_t event_log_version = 1;
};

void compose(Cli& cli, ComposeFlags& f) {
  f.o.docker_compose_file = read_text_file(f.docker_compose, "docker compose file");
  if (!f.prelaunch.empty()) f.o.pre_launch_script = read_text_file(f.prelaunch, "pre-launch script");
  if (!f.env_file.empty()) {
    if (!f.o.kms) fail(ErrorCode::kInvalidArgument, "--env-file needs --kms: only a KMS can give the app the key its env is encrypted to");
    for (const auto& e : read_env(f.env_file)) f.o.allowed_envs.push_back(e.key);
  }
  if (!f.swap.empty()) f.o.swap_bytes = uint64_t{must(dc::parse_memory_mb(f.swap))} << 20;
  f.o.event_log_version = f.event_log_version;
  std::string text = must(dc::build_app_compose(f.o));
  {
    std::ofstream out(f.output, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) fail(ErrorCode::kIo, "cannot write " + f.output + ": " + std::strerror(errno));
  }
  std::string hash = sha256_hex(text);
  if (cli.json()) return print_json(Json{{"path", f.output}, {"hash", hash}});
  std::cout << "App compose file created at: " << f.output << "\nCompose hash: " << hash << "\n";
}

struct DeployFlags {
  std::string name, image, compose, memory = "1024", disk = "20", swap, env_file, user_config, app_id, kms_encrypt_url, net;
  std::optional<std::string> simulated_tee;
  uint32_t vcpu = 1;
  std::vector<std::string> ports, gpus, kms_urls, gateway_urls;
  bool ppcie = false, pin_numa = false, hugepages = false, stopped = false, no_tee = false, tee = false;
  WaitFlags wait;
};

void deploy(Cli& cli, DeployFlags& f) {
  dstackvmm::VmConfiguration c;
  c.name = f.name;
  c.image = f.image;
  c.compose_file = read_text_file(f.compose, "compose file");
  c.vcpu = f.vcpu;
  c.memory = must(dc::parse_memory_mb(f.memory));
  c.disk_size = must(dc::parse_disk_gb(f.disk));
  c.ports = parse_ports(f.ports);
  c.gpus = dc::gpu_request(f.gpus, f.ppcie);
  c.kms_urls = f.kms_urls;
  c.gateway_urls = f.gateway_urls;
  c.hugepages = f.hugepages;
  c.pin_numa = f.pin_numa;
  c.stopped = f.stopped;
  c.no_tee = f.no_tee && !f.tee;
  c.simulated_tee = f.simulated_tee;
  if (!f.user_config.empty()) c.user_config = read_text_file(f.user_config, "user config");
  if (!f.net.empty()) c.networks.push_back({f.net, ""});
  if (!f.swap.empty()) {
    must(dc::parse_memory_mb(f.swap));
    cli.note("note: the daemon ignores --swap at deploy (upstream's too); set it in the compose: `vmmctl compose --swap`");
  }
  std::string app_id = f.app_id;
  if (app_id.rfind("0x", 0) == 0) app_id = app_id.substr(2);
  if (!app_id.empty()) c.app_id = app_id;
  if (app_id.empty()) app_id = sha256_hex(c.compose_file).substr(0, 40);
  if (!f.env_file.empty()) {
    if (f.kms_urls.empty() && f.kms_encrypt_url.empty())
      fail(ErrorCode::kInvalidArgument, "--env-file needs --kms-url: the env is encrypted to a key the KMS gives the app");
    auto compose = parse_compose(c.compose_file, f.compose);
    if (!field_bool(compose, "kms_enabled") && field_string(compose, "key_provider") != "kms")
      fail(ErrorCode::kInvalidArgument, f.compose + " does not enable the KMS (kms_enabled): the guest could not decrypt its env");
    c.encrypted_env = encrypt_env_for_app(cli, f.kms_encrypt_url.empty() ? f.kms_urls.front() : f.kms_encrypt_url, app_id, read_env(f.env_file));
  }
  std::string id = must(cli.client().create_vm(c));
  if (!cli.json()) std::cout << "App ID: " << app_id << "\nCreated VM with ID: " << id << "\n";
  finish_with_wait(cli, id, f.wait, Json{{"id", id}, {"app_id", app_id}});
}

std::string vm_compose(const Json& vm) {
  const Json& c = vm.contains("configuration") ? vm["configuration"] : Json();
  return c.is_object() ? field_string(c, "compose_file") : "";
}

void print_update(Cli& cli, const std::string& id, const std::string& app_id) {
  if (cli.json()) return print_json(Json{{"id", id}, {"app_id", app_id}});
  std::cout << "Updated VM " << id << " (changes take effect at its next start)\n";
}

struct UpdateFlags {
  std::string id;
  std::optional<uint32_t> vcpu;
  std::optional<std::string> memory, disk, image, compose, prelaunch, env_file, user_config, swap;
  std::vector<std::string> ports, gpus, kms_urls;
  bool no_ports = false, ppcie = false, no_gpus = false, no_tee = false, tee = false;
};

void update(Cli& cli, UpdateFlags& f) {
  // Resources first, by ResizeVm (the VM must be stopped), then everything else in one UpgradeApp.
  if (f.vcpu || f.memory || f.disk || f.image) {
    std::optional<uint32_t> mem, dsk;
    if (f.memory) mem = must(dc::parse_memory_mb(*f.memory));
    if (f.disk) dsk = must(dc::parse_disk_gb(*f.disk));
    must(cli.client().resize_vm(f.id, f.vcpu, mem, dsk, f.image));
  }
  dstackvmm::VmUpdate u;
  u.id = f.id;
  if (f.compose || f.prelaunch || f.env_file || f.swap) {
    Json vm = vm_info(cli, f.id);
    std::string old = vm_compose(vm);
    auto j = parse_compose(old, "the VM's compose");
    if (f.compose) j["docker_compose_file"] = read_text_file(*f.compose, "docker compose file");
    if (f.prelaunch) {
      if (f.prelaunch->empty()) j.erase("pre_launch_script");
      else j["pre_launch_script"] = read_text_file(*f.prelaunch, "pre-launch script");
    }
    if (f.swap) {
      uint64_t bytes = uint64_t{must(dc::parse_memory_mb(*f.swap))} << 20;
      if (bytes == 0) j.erase("swap_size");
      else j["swap_size"] = bytes;
    }
    std::string next = dump_compose(j);
    if (f.env_file) {
      auto env = read_env(*f.env_file);
      if (f.kms_urls.empty()) fail(ErrorCode::kInvalidArgument, "--env-file needs --kms-url");
      u.encrypted_env = encrypt_env_for_app(cli, f.kms_urls.front(), field_string(vm, "app_id"), env);
      if (std::string with_env = must(dc::compose_with_env(next, env)); !with_env.empty()) next = with_env;
    }
    if (next != old) u.compose_file = next;
  }
  if (f.user_config) u.user_config = read_text_file(*f.user_config, "user config");
  if (f.no_ports) u.ports = std::vector<dstackvmm::PortMapping>{};
  if (!f.ports.empty()) u.ports = parse_ports(f.ports);
  if (f.no_gpus) u.gpus = dstackvmm::GpuRequest{"listed", {}};
  if (auto g = dc::gpu_request(f.gpus, f.ppcie)) u.gpus = g;
  if (f.no_tee) u.no_tee = true;
  if (f.tee) u.no_tee = false;
  if (!f.kms_urls.empty()) u.kms_urls = f.kms_urls;
  print_update(cli, f.id, must(cli.client().upgrade_app(u)));
}

}  // namespace

void add_deploy_commands(CLI::App& app, Cli& cli) {
  static ComposeFlags cf;
  auto* co = app.add_subcommand("compose", "write an app-compose.json and print its hash");
  co->add_option("--name", cf.o.name, "app name")->required();
  co->add_option("--docker-compose", cf.docker_compose, "docker-compose.yaml to embed")->required()->check(CLI::ExistingFile);
  co->add_option("--prelaunch-script", cf.prelaunch, "script the guest runs before the containers")->check(CLI::ExistingFile);
  co->add_flag("--kms", cf.o.kms, "the app gets its keys from a KMS");
  co->add_flag("--gateway", cf.o.gateway, "register the app with dstack-gateway");
  co->add_flag("--local-key-provider", cf.o.local_key_provider, "the app gets its keys from the host's key provider");
  co->add_option("--key-provider", cf.o.key_provider, "none, kms, local or tpm")->check(CLI::IsMember({"none", "kms", "local", "tpm"}));
  co->add_option("--key-provider-id", cf.o.key_provider_id, "key provider id (hex)");
  co->add_flag("--public-logs", cf.o.public_logs, "anyone may read the containers' logs");
  co->add_flag("--public-sysinfo", cf.o.public_sysinfo, "anyone may read the guest's system info");
  co->add_option("--env-file", cf.env_file, "KEY=VALUE file whose keys the app may receive (needs --kms)")->check(CLI::ExistingFile);
  co->add_flag("--no-instance-id", cf.o.no_instance_id, "no per-instance id");
  co->add_flag("--secure-time", cf.o.secure_time, "the guest gets its time securely");
  co->add_option("--swap", cf.swap, "swap size: 512M, 2G; 0 for none");
  co->add_option("--event-log-version", cf.event_log_version, "1 or 2")->check(CLI::IsMember({1u, 2u}));
  co->add_option("--output", cf.output, "where to write app-compose.json")->required();
  co->callback([&cli] { compose(cli, cf); });

  static DeployFlags df;
  auto* de = app.add_subcommand("deploy", "create a VM (and start it, unless --stopped)");
  de->add_option("--name", df.name, "VM name")->required();
  de->add_option("--image", df.image, "image name (`vmmctl lsimage`)")->required();
  de->add_option("--compose", df.compose, "app-compose.json (`vmmctl compose` writes one)")->required()->check(CLI::ExistingFile);
  de->add_option("--vcpu", df.vcpu, "vCPUs")->capture_default_str();
  de->add_option("--memory", df.memory, "memory: 1024 (MB), 512M, 2G")->capture_default_str();
  de->add_option("--disk", df.disk, "disk: 20 (GB), 20G, 1T")->capture_default_str();
  de->add_option("--swap", df.swap, "accepted as upstream's CLI does; set swap in the compose instead");
  de->add_option("--env-file", df.env_file, "KEY=VALUE env, encrypted to the app's KMS key before it leaves")->check(CLI::ExistingFile);
  de->add_option("--user-config", df.user_config, "file the guest sees as /dstack/.user-config")->check(CLI::ExistingFile);
  de->add_option("--app-id", df.app_id, "app id (default: from the compose's hash)");
  de->add_option("--port", df.ports, "port mapping, repeatable: tcp:8080:80 or tcp:0.0.0.0:8080:80");
  de->add_option("--gpu", df.gpus, "GPU slot to attach, repeatable; `all` for every GPU");
  de->add_flag("--ppcie", df.ppcie, "attach all GPUs and NVSwitches (protected PCIe)");
  de->add_flag("--pin-numa", df.pin_numa, "pin the VM to one NUMA node");
  de->add_flag("--hugepages", df.hugepages, "back memory with huge pages");
  de->add_option("--kms-url", df.kms_urls, "KMS URL for this VM, repeatable");
  de->add_option("--kms-encrypt-url", df.kms_encrypt_url, "KMS to fetch the env key from (default: the first --kms-url)");
  de->add_option("--gateway-url", df.gateway_urls, "gateway URL for this VM, repeatable");
  de->add_flag("--stopped", df.stopped, "create it without starting it");
  auto* no_tee = de->add_flag("--no-tee", df.no_tee, "run without TEE");
  de->add_flag("--tee", df.tee, "run with TEE (the default)")->excludes(no_tee);
  de->add_option("--simulated-tee", df.simulated_tee, "simulated TEE platform")
      ->check(CLI::IsMember({"dstack-tdx", "dstack-gcp-tdx", "dstack-amd-sev-snp", "dstack-nitro-enclave", "dstack-aws-nitro-tpm"}));
  de->add_option("--net", df.net, "network mode: user or bridge (default: the daemon's)")->check(CLI::IsMember({"user", "bridge"}));
  add_wait_flags(de, df.wait, "running");
  de->callback([&cli] { deploy(cli, df); });

  static std::string id, file, env_file;
  static std::vector<std::string> kms_urls, ports;
  auto* ue = app.add_subcommand("update-env", "replace a VM's encrypted env");
  ue->add_option("vm_id", id, "VM id")->required();
  ue->add_option("--env-file", env_file, "KEY=VALUE file")->required()->check(CLI::ExistingFile);
  ue->add_option("--kms-url", kms_urls, "KMS to fetch the app's env key from")->required();
  ue->callback([&cli] {
    Json vm = vm_info(cli, id);
    auto env = read_env(env_file);
    dstackvmm::VmUpdate u;
    u.id = id;
    u.encrypted_env = encrypt_env_for_app(cli, kms_urls.front(), field_string(vm, "app_id"), env);
    if (std::string c = must(dc::compose_with_env(vm_compose(vm), env)); !c.empty()) u.compose_file = c;
    print_update(cli, id, must(cli.client().upgrade_app(u)));
  });

  auto* uu = app.add_subcommand("update-user-config", "replace a VM's user config");
  uu->add_option("vm_id", id, "VM id")->required();
  uu->add_option("file", file, "user config file")->required()->check(CLI::ExistingFile);
  uu->callback([&cli] {
    dstackvmm::VmUpdate u{.id = id};
    u.user_config = read_text_file(file, "user config");
    print_update(cli, id, must(cli.client().upgrade_app(u)));
  });

  auto* uc = app.add_subcommand("update-app-compose", "replace a VM's app-compose.json");
  uc->add_option("vm_id", id, "VM id")->required();
  uc->add_option("file", file, "app-compose.json")->required()->check(CLI::ExistingFile);
  uc->callback([&cli] {
    dstackvmm::VmUpdate u{.id = id};
    u.compose_file = read_text_file(file, "compose file");
    print_update(cli, id, must(cli.client().upgrade_app(u)));
  });

  auto* up = app.add_subcommand("update-ports", "replace a VM's port mappings");
  up->add_option("vm_id", id, "VM id")->required();
  up->add_option("--port", ports, "port mapping, repeatable: tcp:8080:80")->required();
  up->callback([&cli] {
    dstackvmm::VmUpdate u{.id = id};
    u.ports = parse_ports(ports);
    print_update(cli, id, must(cli.client().upgrade_app(u)));
  });

  static UpdateFlags uf;
  auto* ud = app.add_subcommand("update", "change several things of a VM at once");
  ud->add_option("vm_id", uf.id, "VM id")->required();
  ud->add_option("--vcpu", uf.vcpu, "vCPUs (VM stopped)");
  ud->add_option("--memory", uf.memory, "memory (VM stopped)");
  ud->add_option("--disk", uf.disk, "disk, grow only (VM stopped)");
  ud->add_option("--image", uf.image, "image (VM stopped)");
  ud->add_option("--compose", uf.compose, "docker-compose.yaml to put in the VM's app compose")->check(CLI::ExistingFile);
  ud->add_option("--prelaunch-script", uf.prelaunch, "pre-launch script file; \"\" removes it");
  ud->add_option("--env-file", uf.env_file, "new env (needs --kms-url)")->check(CLI::ExistingFile);
  ud->add_option("--user-config", uf.user_config, "user config file")->check(CLI::ExistingFile);
  auto* p = ud->add_option("--port", uf.ports, "port mapping, repeatable");
  ud->add_flag("--no-ports", uf.no_ports, "remove every port mapping")->excludes(p);
  ud->add_option("--swap", uf.swap, "swap size in the compose; 0 removes it");
  auto* g = ud->add_option("--gpu", uf.gpus, "GPU slot, repeatable; `all` for every GPU");
  auto* pp = ud->add_flag("--ppcie", uf.ppcie, "attach all GPUs and NVSwitches")->excludes(g);
  ud->add_flag("--no-gpus", uf.no_gpus, "detach every GPU")->excludes(g)->excludes(pp);
  auto* nt = ud->add_flag("--no-tee", uf.no_tee, "run without TEE");
  ud->add_flag("--tee", uf.tee, "run with TEE")->excludes(nt);
  ud->add_option("--kms-url", uf.kms_urls, "KMS URLs for this VM, repeatable");
  ud->callback([&cli] { update(cli, uf); });
}

}  // namespace vmmctl
