// SPDX-License-Identifier: Apache-2.0
// dstack-vmm: load the config, then serve. Everything else is in libdstackvmm.
#include <malloc.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include <dstackvmm/server/auth.hpp>
#include <dstackvmm/config.hpp>
#include <dstackvmm/server/discovery.hpp>
#include <dstackvmm/server/host_api_server.hpp>
#include <dstackvmm/server/supervisor.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/version.hpp>
#include <dstackvmm/vm_launcher.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "one_shot.hpp"
#include "server.hpp"

using namespace dstackvmm;

namespace {

Result<Config> load(const std::string& path, bool quiet) {
  std::vector<ConfigDiagnostic> diags;
  Result<Config> config = [&]() -> Result<Config> {
    if (!path.empty()) return load_config(path, &diags);
    ParseOptions options;
    options.origin = "<embedded>";
    options.base_dir = std::filesystem::current_path();
    return parse_config(embedded_dev_config(), options, &diags);
  }();
  if (!quiet)
    for (const auto& d : diags)
      if (d.severity == ConfigDiagnostic::Severity::kWarning) std::cerr << d.to_string() << '\n';
  if (!config.ok()) return config;
  if (auto s = resolve_home_defaults(*config); !s.ok()) return s.error();
  // What the names alone cannot show (check-config too): a run_path that is a symlink to `/`.
  if (auto s = check_state_folders_resolved(config->run_path, config->image.path); !s.ok()) return s.error();
  return config;
}

std::filesystem::path self_exe() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec);
}

// The configured supervisor, or the one installed (or built) beside this binary.
std::filesystem::path supervisor_exe(const std::filesystem::path& configured) {
  if (::access(configured.c_str(), X_OK) == 0) return configured;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (auto candidate : {self / "supervisor", self / "../supervisor/supervisor"})
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  return configured;
}

int serve(const Config& config, const std::string& config_path) {
  set_log_level(parse_log_level(config.log_level).value_or(LogLevel::kInfo));
  // Signals are taken by one thread with sigwait, so the handler can call into the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // Guests run under the supervisor so they outlive this process; it is started if needed.
  auto supervisor = connect_supervisor(config.supervisor, supervisor_exe(config.supervisor.exe));
  if (!supervisor.ok()) {
    std::cerr << "dstack-vmm: " << supervisor.error().message << '\n';
    return 1;
  }
  ManagerOptions options;
  options.config = config;
  options.launcher = *supervisor;
  options.cid_registry = default_cid_registry();  // shared with every other VMM of this host
  options.vm_launcher_exe = self_exe();            // TPM VMs run under `<this> vm-launcher`
  // A host's history of stopped VMs is read once we serve (their listings fill in within
  // a fraction of a second); a few are read first, so that a small host lists all at once.
  options.read_later_above = 64;
  auto vmm = VmManager::open(options);
  if (!vmm.ok()) {
    std::cerr << "dstack-vmm: " << vmm.error().message << '\n';
    return 1;
  }
  // The host API guests call: a client of the engine, like the HTTP server below.
  auto host_api = server::HostApiServer::start(**vmm);
  if (!host_api.ok()) {
    std::cerr << "dstack-vmm: " << host_api.error().message << '\n';
    return 1;
  }
  auto auth = Authenticator::create(config.auth);
  if (!auth.ok()) {
    std::cerr << "dstack-vmm: [auth] " << auth.error().message << '\n';
    return 1;
  }
  daemon::Server server(config, **vmm, std::move(*auth));
  if (auto s = server.bind(); !s.ok()) {
    std::cerr << "dstack-vmm: " << s.error().message << '\n';
    return 1;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log_message(LogLevel::kInfo, "vmm", std::string("received ") + strsignal(sig) + ", shutting down");
    (*supervisor)->stop_respawning();  // a supervisor gone meanwhile stays gone: none is left behind us
    server.stop();
  });
  const auto& addr = server.address();
  DiscoveryInfo about{addr.kind == ListenAddress::Kind::kUnix ? addr.to_string() : addr.host + ":" + std::to_string(addr.port),
                      std::filesystem::current_path().string(),
                      config_path.empty() ? std::nullopt : std::optional(std::filesystem::absolute(config_path).string()),
                      config.image.path, config.run_path, config.node_name, std::string(api_version())};
  auto discovery = DiscoveryFile::publish(default_discovery_dir(), about);
  if (!discovery.ok())
    log_message(LogLevel::kWarn, "vmm", "no discovery file (vmm-cli 'vmm ls' will not list us): " + discovery.error().message);
  log_message(LogLevel::kInfo, "vmm", "listening on " + addr.to_string());
  std::cout << "dstack-vmm " << api_version() << " (" << git_rev() << ") serving at "
            << addr.url() << (addr.kind == ListenAddress::Kind::kTcp ? "/" : "") << std::endl;
  // Whether this host can run what the config asks: logged once, off the start-up path (the
  // KVM probe may take its whole deadline). `vmmctl host check` asks again at any time.
  std::jthread host_check([&vmm](std::stop_token stop) {
    HostReport report = (*vmm)->check_host(stop);
    if (stop.stop_requested()) return;  // shutting down: what it found no longer matters
    for (const auto& c : report.checks)
      if (c.level != CheckLevel::kOk)
        log_message(c.level == CheckLevel::kFail ? LogLevel::kError : LogLevel::kWarn, "host-check",
                    c.name + ": " + c.detail + (c.fix.empty() ? "" : " (fix: " + c.fix + ")"));
  });
  Status result = server.run();
  (*supervisor)->stop_respawning();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wake the waiter if we stopped on our own
  waiter.join();
  host_check.request_stop();  // its probes (QEMU, KVM, URLs) end now: SIGTERM never waits for them
  host_check.join();
  if (!result.ok()) {
    std::cerr << "dstack-vmm: " << result.error().message << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives every thread that allocates an arena of its own; the request threads of a
  // burst of listings then keep tens of MB that return to the system only slowly. Two
  // arenas keep the daemon small at no measurable cost (its threads mostly wait).
  mallopt(M_ARENA_MAX, 2);
  // A request body of megabytes (a CreateVm near the 10 MiB cap) would otherwise raise
  // glibc's mmap threshold as it is freed, and every later one would stay in the heap: eight
  // at once left ~90 MB resident after they were refused. Fixed at 1 MiB, big buffers are
  // mapped and go back to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Below that, up to 4 MiB freed at the heap's top stay for the next request instead of
  // going back at once: a listing of a thousand VMs (~450 KB of JSON) otherwise faulted its
  // buffer's pages in anew on every call. The engine trims the heap itself after start-up and
  // each tick (malloc_trim), so this bounds what an idle daemon keeps.
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  // Upstream's shape: dstack-vmm [-c FILE] [--netd-socket PATH] [serve|check-config|run ...].
  CLI::App app{"dstack-vmm: runs dstack confidential VMs on QEMU"};
  std::string config_path, netd_socket;
  bool check = false, print = false, version = false;
  app.add_option("-c,--config", config_path, "vmm.toml to load over the defaults (default: the embedded development profile)");
  app.add_option("--netd-socket", netd_socket, "overrides [netd] socket (used only with [cvm.network_filter] mode = \"libvirt\", "
                                               "which this daemon refuses)");
  app.add_flag("--check-config", check, "same as the check-config command");
  app.add_flag("--print-config", print, "print the effective config as TOML and exit");
  app.add_flag("-V,--version", version, "print the version and exit");
  app.require_subcommand(0, 1);
  app.add_subcommand("serve", "serve the management API, host API and console (the default)");
  auto* check_cmd = app.add_subcommand("check-config", "validate the config, print every problem, exit 0 if valid");
  daemon::OneShotOptions one;
  auto* run_cmd = app.add_subcommand("run", "run one VM without a daemon (in the foreground; Ctrl-C stops it)");
  run_cmd->add_option("VM_CONFIG", one.vm_config, "CreateVm's VmConfiguration as a JSON file (leave out to run the VM "
                                                  "already in --workdir)")->check(CLI::ExistingFile);
  run_cmd->add_option("--workdir", one.workdir, "the VM's folder; its name is the VM id (default: <run_path>/<new id>)");
  run_cmd->add_flag("--dry-run", one.dry_run, "print the command line a start would run and the files it would hand the "
                                             "guest (.sys-config.json, ...), and start nothing");
  run_cmd->add_flag("--json", one.json, "with --dry-run: all of it as one JSON object");
  // Upstream's hidden launcher of a VM with a software TPM (swtpm and QEMU as one process),
  // what the supervisor runs for such a VM: `dstack-vmm vm-launcher --spec <workdir>/launch.json`.
  std::string launch_spec;
  auto* launcher_cmd = app.add_subcommand("vm-launcher", "")->group("");
  launcher_cmd->add_option("--spec", launch_spec, "the launch spec")->required();
  CLI11_PARSE(app, argc, argv);
  if (launcher_cmd->parsed()) return run_vm_launcher(launch_spec);

  if (version) {
    std::cout << "dstack-vmm " << api_version() << " (" << git_rev() << "), libdstackvmm "
              << library_version() << '\n';
    return 0;
  }
  auto config = load(config_path, print);
  if (!config.ok()) {
    std::cerr << config.error().message << '\n';
    return 1;
  }
  if (!netd_socket.empty()) {
    config->netd.socket = netd_socket;
    std::cerr << "warning: --netd-socket: dstack-netd is used only by [cvm.network_filter] mode = \"libvirt\", which this "
                 "daemon does not support; the socket is not used\n";
  }
  if (check || check_cmd->parsed()) {
    std::cout << "configuration is valid\n";
    return 0;
  }
  if (print) {
    // Comments, so the output still loads as it is; the README's key table has the whole story.
    std::cout << print_config(*config)
              << "\n# Where this daemon differs from upstream's (README, Configuration):\n"
                 "#   refused at load:      cvm.network_filter.mode = \"libvirt\"\n"
                 "#   warned about, unused: temp_dir, cvm.instance_id, cvm.network_filter.filter/parameters, [netd]\n"
                 "#   enforced per VM:      cvm.max_allocable_vcpu, cvm.max_allocable_memory_in_mb, cvm.max_disk_size\n"
                 "#   ours:                 allow_insecure_remote, image.max_unpacked_mb, cvm.accel, cvm.guest_channel,\n"
                 "#                         cvm.platform = \"none\", cvm.max_disk_size\n";
    return 0;
  }
  if (run_cmd->parsed()) return daemon::run_one_shot(*config, one);
  return serve(*config, config_path);
}
