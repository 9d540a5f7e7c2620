// SPDX-License-Identifier: Apache-2.0
// What is not one VM: images, GPUs, the guest agent, the daemon itself, which daemon to talk
// to, and which KMS signers to trust.
#include <chrono>
#include <iostream>
#include <thread>

#include <dstackvmm/client/client_config.hpp>
#include <dstackvmm/client/env_crypto.hpp>

#include "cli.hpp"

namespace vmmctl {

namespace dc = dstackvmm::client;

namespace {

void lsimage(Cli& cli) {
  Json r = must_json(cli.client().list_images());
  if (cli.json()) return print_json(field_array(r, "images"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : field_array(r, "images")) rows.push_back({cell(i, "name"), cell(i, "version")});
  print_table({"Name", "Version"}, rows);
}

void host_check(Cli& cli) {
  Json r = must_json(cli.client().check_host());
  if (cli.json()) print_json(r);
  else
    for (const auto& c : field_array(r, "checks")) {
      std::string level = cell(c, "level");
      std::cout << (level == "ok" ? "ok  " : level == "warn" ? "WARN" : "FAIL") << "  " << cell(c, "name") << ": " << printable(cell(c, "detail")) << "\n";
      if (!cell(c, "fix").empty()) std::cout << "      fix: " << cell(c, "fix") << "\n";
    }
  if (!field_bool(r, "ok")) fail(ErrorCode::kFailedPrecondition, "the host is not ready: a check failed");  // exit 3
}

void lsgpu(Cli& cli) {
  Json r = must_json(cli.client().list_gpus());
  if (cli.json()) return print_json(field_array(r, "gpus"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : field_array(r, "gpus"))
    rows.push_back({cell(g, "slot"), cell(g, "product_id"), cell(g, "description"), field_bool(g, "is_free") ? "yes" : "no"});
  print_table({"Slot", "Product ID", "Description", "Available"}, rows);
}

void image_ls(Cli& cli) {
  Json local = must_json(cli.client().list_images());
  Json registry = must_json(cli.client().list_registry_images());
  if (cli.json()) return print_json(Json{{"images", field_array(local, "images")}, {"registry", field_array(registry, "images")}});
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : field_array(local, "images")) rows.push_back({cell(i, "name"), cell(i, "version"), "local"});
  for (const auto& i : field_array(registry, "images")) {
    std::string state = field_bool(i, "pulling") ? "pulling" : !cell(i, "error").empty() ? "failed: " + cell(i, "error")
                        : field_bool(i, "local")  ? "pulled"
                                                   : "in registry";
    rows.push_back({cell(i, "tag"), "", state});
  }
  print_table({"Name/Tag", "Version", "State"}, rows);
}

// Pulls and follows the pull to its end: the daemon's table says pulling, failed or local.
void image_pull(Cli& cli, const std::string& tag, bool wait) {
  must(cli.client().pull_registry_image(tag));
  if (!wait) {
    if (cli.json()) print_json(Json{{"tag", tag}, {"pulling", true}});
    return;
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(cli.globals().timeout_s * 1000));
  for (;;) {
    Json r = must_json(cli.client().list_registry_images());
    const Json* mine = nullptr;
    for (const auto& i : field_array(r, "images"))
      if (cell(i, "tag") == tag) mine = &i;
    if (!mine) fail(ErrorCode::kNotFound, "the registry no longer lists " + tag);
    if (!mine->value("pulling", false)) {
      cli.progress_done();
      if (!cell(*mine, "error").empty()) fail(ErrorCode::kFailedPrecondition, "pulling " + tag + " failed: " + cell(*mine, "error"));
      if (cli.json()) print_json(*mine);
      else std::cout << "Pulled " << tag << "\n";
      return;
    }
    if (mine->contains("progress")) {
      uint64_t done = field_uint(field_object(*mine, "progress"), "bytes_done"), total = field_uint(field_object(*mine, "progress"), "bytes_total");
      cli.progress("pulling " + tag + ": " + std::to_string(done >> 20) + " / " + std::to_string(total >> 20) + " MiB");
    } else {
      cli.progress("pulling " + tag + " ...");
    }
    if (std::chrono::steady_clock::now() > until) fail(ErrorCode::kFailedPrecondition, tag + " is still being pulled; see `vmmctl image ls`");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the wire has no pull events
  }
}

void guest(Cli& cli, const std::string& id, const std::string& what) {
  const char* method = what == "info" ? "Info" : what == "sysinfo" ? "SysInfo" : what == "network" ? "NetworkInfo" : "ListContainers";
  Json r = must_json(cli.client().guest(method, id));
  print_json(r);  // the guest agent's own document; a table would hide most of it
}

void vmm_ls(Cli& cli) {
  auto daemons = dc::list_running_daemons(dc::default_discovery_dir());
  auto config = must(dc::load_client_config(dc::default_client_dir() / "config.json"));
  if (cli.json()) {
    Json out = Json::array();
    for (const auto& d : daemons)
      out.push_back({{"id", d.id}, {"pid", d.pid}, {"address", d.address}, {"url", d.url}, {"working_dir", d.working_dir},
                     {"node_name", d.node_name}, {"version", d.version}, {"started_at", d.started_at},
                     {"active", !config.active_vmm.empty() && d.id.rfind(config.active_vmm, 0) == 0}});
    return print_json(out);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : daemons)
    rows.push_back({(!config.active_vmm.empty() && d.id.rfind(config.active_vmm, 0) == 0) ? "*" : " ", d.id.substr(0, 8),
                    std::to_string(d.pid), d.url, d.node_name, d.version, d.working_dir});
  print_table({"", "ID", "PID", "URL", "Node", "Version", "Working dir"}, rows);
}

void vmm_switch(Cli& cli, const std::string& prefix) {
  auto daemons = dc::list_running_daemons(dc::default_discovery_dir());
  std::vector<dc::RunningDaemon> hits;
  for (const auto& d : daemons)
    if (d.id.rfind(prefix, 0) == 0) hits.push_back(d);
  if (hits.empty()) fail(ErrorCode::kNotFound, "no running daemon's id starts with '" + prefix + "' (`vmmctl vmm ls` lists them)");
  if (hits.size() > 1) fail(ErrorCode::kInvalidArgument, "'" + prefix + "' names " + std::to_string(hits.size()) + " daemons; give more of the id");
  auto file = dc::default_client_dir() / "config.json";
  auto config = must(dc::load_client_config(file));
  config.active_vmm = hits.front().id;
  must(dc::save_client_config(file, config));
  if (cli.json()) return print_json(Json{{"id", hits.front().id}, {"url", hits.front().url}});
  std::cout << "Active daemon: " << hits.front().id << " (" << hits.front().url << ")\n";
}

void kms(Cli& cli, const std::string& action, const std::string& key) {
  auto file = dc::default_client_dir() / "kms-whitelist.json";
  auto keys = must(dc::load_trusted_signers(file));
  if (action == "list") {
    if (cli.json()) return print_json(keys);
    for (const auto& k : keys) std::cout << "0x" << k << "\n";
    return;
  }
  if (key.empty()) fail(ErrorCode::kInvalidArgument, "kms " + action + " needs the signer's public key");
  std::string k = must(dc::normalize_signer_key(key));
  auto at = std::find(keys.begin(), keys.end(), k);
  if (action == "add" && at == keys.end()) keys.push_back(k);
  if (action == "remove") {
    if (at == keys.end()) fail(ErrorCode::kNotFound, "0x" + k + " is not in the whitelist");
    keys.erase(at);
  }
  must(dc::save_trusted_signers(file, keys));
  if (cli.json()) print_json(keys);
}

}  // namespace

void add_host_commands(CLI::App& app, Cli& cli) {
  app.add_subcommand("lsimage", "list the daemon's images")->callback([&cli] { lsimage(cli); });
  app.add_subcommand("lsgpu", "list the GPUs VMs may attach")->callback([&cli] { lsgpu(cli); });

  static std::string arg, what;
  static bool wait = false;
  auto* image = app.add_subcommand("image", "local images and the registry's");
  image->require_subcommand(1);
  image->add_subcommand("ls", "local images and registry tags")->callback([&cli] { image_ls(cli); });
  auto* pull = image->add_subcommand("pull", "pull an image from the configured registry");
  pull->add_option("tag", arg, "registry tag (`vmmctl image ls`)")->required();
  pull->add_flag("--wait", wait, "follow the pull to its end, up to --timeout seconds");
  pull->callback([&cli] { image_pull(cli, arg, wait); });
  auto* rm = image->add_subcommand("rm", "delete a local image no VM uses");
  rm->add_option("name", arg, "image name")->required();
  rm->callback([&cli] {
    must(cli.client().delete_image(arg));
    if (cli.json()) print_json(Json{{"name", arg}});
  });

  auto* g = app.add_subcommand("guest", "ask a VM's guest agent (JSON)");
  g->add_option("vm_id", arg, "VM id")->required();
  g->add_option("what", what, "info, sysinfo, network or containers")->required()->check(CLI::IsMember({"info", "sysinfo", "network", "containers"}));
  g->callback([&cli] { guest(cli, arg, what); });

  auto* host = app.add_subcommand("host", "the daemon's host");
  host->require_subcommand(1);
  host->add_subcommand("check", "is the host ready for what the daemon's config asks (QEMU, KVM, vsock, TDX, SEV-SNP, "
                               "firmware, IOMMU, GPUs, CIDs, ports, state folder, KMS, gateway)? Exit 3 when a check fails")
      ->callback([&cli] { host_check(cli); });
  host->add_subcommand("info", "version, resources, KMS, gateway and networking of the daemon")->callback([&cli] {
    Json v = must_json(cli.client().version()), m = must_json(cli.client().meta());
    Json out = m;
    out["version"] = v;
    if (cli.json()) return print_json(out);
    std::cout << "Version:     " << cell(v, "version") << " (" << cell(v, "rev") << ")\n"
              << "URL:         " << cli.client().options().url << "\n"
              << "Max VMs:     " << cell(m["resources"], "max_cvm_number") << "\n"
              << "Max vCPUs:   " << cell(m["resources"], "max_allocable_vcpu") << "\n"
              << "Max memory:  " << cell(m["resources"], "max_allocable_memory_in_mb") << " MB\n"
              << "KMS:         " << cell(m["kms"], "url") << "\n"
              << "Gateway:     " << cell(m["gateway"], "url") << "\n"
              << "Networking:  " << field_array(m["networking"], "supported_modes").dump() << ", default "
              << cell(m["networking"], "default_mode") << "\n";
  });

  app.add_subcommand("reload", "re-read the VMs' folders (ReloadVms)")->callback([&cli] {
    Json r = must_json(cli.client().reload_vms());
    if (cli.json()) return print_json(r);
    std::cout << "loaded " << cell(r, "loaded") << ", updated " << cell(r, "updated") << ", removed " << cell(r, "removed") << "\n";
  });
  app.add_subcommand("health", "whether the daemon can do its work (exit 0), or not (exit 6)")->callback([&cli] {
    Json h = must_json(cli.client().health());
    bool ok = cell(h, "status") == "ok";
    if (cli.json()) {
      print_json(h);
    } else {
      std::cout << (ok ? "healthy" : "unhealthy") << " (dstack-vmm " << cell(h, "version") << ", up " << cell(h, "uptime_secs")
                << " s, " << cell(h["vms"], "running") << " of " << cell(h["vms"], "total") << " VMs running)\n";
      for (const auto& [name, c] : h["checks"].items())
        std::cout << "  " << name << ": " << (c.value("ok", false) ? "ok" : "FAIL: " + c.value("error", std::string())) << "\n";
    }
    if (!ok) {
      std::string why;
      for (const auto& [name, c] : h["checks"].items())
        if (!c.value("ok", false)) why += (why.empty() ? "" : "; ") + name + ": " + c.value("error", std::string());
      fail(ErrorCode::kInternal, "the daemon is unhealthy: " + why);  // exit 6
    }
  });
  app.add_subcommand("version", "the daemon's version (JSON)")->callback([&cli] { print_json(must_json(cli.client().version())); });
  app.add_subcommand("meta", "the daemon's GetMeta (JSON)")->callback([&cli] { print_json(must_json(cli.client().meta())); });

  auto* vmm = app.add_subcommand("vmm", "the daemons running on this host");
  vmm->require_subcommand(1);
  vmm->add_subcommand("ls", "list running daemons (* marks the active one)")->callback([&cli] { vmm_ls(cli); });
  auto* sw = vmm->add_subcommand("switch", "make a daemon the default (saved in ~/.dstack-vmm/config.json)");
  sw->add_option("id", arg, "its id, or the start of it")->required();
  sw->callback([&cli] { vmm_switch(cli, arg); });

  auto* k = app.add_subcommand("kms", "the KMS signers whose env keys are trusted");
  k->require_subcommand(1);
  k->add_subcommand("list", "list trusted signers")->callback([&cli] { kms(cli, "list", ""); });
  auto* add = k->add_subcommand("add", "trust a signer");
  add->add_option("pubkey", arg, "compressed secp256k1 public key, hex (0x optional)")->required();
  add->callback([&cli] { kms(cli, "add", arg); });
  auto* del = k->add_subcommand("remove", "stop trusting a signer");
  del->add_option("pubkey", arg, "compressed secp256k1 public key, hex")->required();
  del->callback([&cli] { kms(cli, "remove", arg); });
}

}  // namespace vmmctl
