// SPDX-License-Identifier: Apache-2.0
// `dstack-vmm run VM_CONFIG [--workdir D] [--dry-run]`: the engine alone on one VM folder,
// under a launcher of this process (no supervisor, no server). The argv comes from the same
// plan a daemon's start uses, so a dry run prints what the daemon would launch.
#include "one_shot.hpp"

#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <dstackvmm/log.hpp>
#include <dstackvmm/server/host_api_server.hpp>
#include <dstackvmm/server/rpc.hpp>
#include <dstackvmm/vm_id.hpp>
#include <dstackvmm/server/discovery.hpp>
#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::daemon {

namespace fs = std::filesystem;

namespace {

int fail(const std::string& message) {
  std::cerr << "dstack-vmm run: " << message << '\n';
  return 1;
}

// A word as a POSIX shell reads it back: bare when safe, else single-quoted.
std::string shell_word(const std::string& w) {
  bool safe = !w.empty();
  for (char c : w) safe = safe && (std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./:=,@%+").find(c) != std::string_view::npos);
  if (safe) return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Result<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read " + path);
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > (8u << 20)) return make_error(ErrorCode::kInvalidArgument, path + " is larger than 8 MiB");
  }
  return text;
}

// The dry run: the command line first (a shell reads it back word for word), then each file a
// start writes for the guest under a comment line naming it; or all of it as one JSON object.
void print_preview(const LaunchPreview& p, bool as_json) {
  if (as_json) {
    nlohmann::json j{{"argv", p.argv}, {"qemu_argv", p.qemu_argv}, {"sys_config", p.sys_config}, {"vm_config", p.vm_config},
                     {"mr_config", p.mr_config ? nlohmann::json(*p.mr_config) : nlohmann::json()},
                     {"tee_simulator", p.tee_simulator ? nlohmann::json(*p.tee_simulator) : nlohmann::json()},
                     {"launch_spec", p.launch_spec ? nlohmann::json(*p.launch_spec) : nlohmann::json()},
                     {"notices", p.notices}};
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return;
  }
  std::string line;
  for (const auto& a : p.argv) line += (line.empty() ? "" : " ") + shell_word(a);
  std::cout << line << '\n';
  std::cout << "# shared/.sys-config.json\n" << p.sys_config << '\n';
  std::cout << "# vm_config (in .sys-config.json)\n" << p.vm_config << '\n';
  if (p.mr_config) std::cout << "# mr_config (MrConfigV3, in .sys-config.json)\n" << *p.mr_config << '\n';
  if (p.tee_simulator) std::cout << "# shared/.tee-simulator.json\n" << *p.tee_simulator << '\n';
  if (p.launch_spec) std::cout << "# launch.json (swtpm launcher)\n" << *p.launch_spec << '\n';
}

Status write_fixed_instance_info(const fs::path& dir, const std::string& app_id) {
  nlohmann::ordered_json j;
  j["instance_id_seed"] = "4befb40617034796ce9aad5b07b812359d8817bd";
  j["instance_id"] = "";
  j["app_id"] = app_id;
  std::ofstream out(dir / "shared" / ".instance_info", std::ios::trunc);
  out << j.dump();
  if (!out.flush()) return make_error(ErrorCode::kIo, "cannot write " + (dir / "shared" / ".instance_info").string());
  return {};
}

}  // namespace

int run_one_shot(const Config& config, const OneShotOptions& o) {
  fs::path dir = o.workdir.empty() ? fs::path(config.run_path) / new_vm_id() : fs::absolute(o.workdir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::string id = dir.filename().string();
  if (!validate_vm_id(id).ok())
    return fail("the workdir's folder name '" + id + "' must be a VM id (letters, digits, '-' and '_'), e.g. " +
                (dir.parent_path() / new_vm_id()).string());
  std::error_code ec;
  bool existing = fs::exists(dir / "vm-manifest.json", ec);
  if (existing && !o.vm_config.empty())
    return fail(dir.string() + " already holds a VM; leave out VM_CONFIG to run it, or give another --workdir");
  if (!existing && o.vm_config.empty()) return fail("no VM in " + dir.string() + "; give VM_CONFIG (CreateVm's JSON) to make one");

  // Signals go to one thread (sigwait), which stops the VM; QEMU's exit then ends the wait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // ends the waiter once the VM has ended on its own
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (o.dry_run) set_log_level(LogLevel::kWarn);  // the command line alone on stdout, problems on stderr
  ManagerOptions mo;
  mo.config = config;
  mo.config.run_path = dir.parent_path().string();
  mo.launcher = make_direct_launcher();
  mo.cid_registry = default_cid_registry();  // a one-shot VM never shares a CID with a daemon's
  mo.only_vm = id;
  std::error_code self_ec;
  mo.vm_launcher_exe = fs::read_symlink("/proc/self/exe", self_ec);  // TPM VMs run under `<this> vm-launcher`
  mo.recover = false;
  mo.auto_restart_thread = false;
  if (auto s = check_state_folders(mo.config.run_path, mo.config.image.path); !s.ok()) return fail(s.error().message);
  auto vmm = VmManager::open(mo);
  if (!vmm.ok()) return fail(vmm.error().message);
  bool made = false;
  if (!existing) {
    auto text = read_small_file(o.vm_config);
    if (!text.ok()) return fail(text.error().message);
    auto cfg = decode_vm_configuration_json(*text);
    if (!cfg.ok()) return fail(o.vm_config + ": " + cfg.error().message);
    cfg->stopped = true;
    auto created = (*vmm)->create(*cfg);
    if (!created.ok()) return fail(created.error().message);
    made = true;
  }
  if (made) {
    // As upstream's one-shot run: a VM it makes starts from a fixed instance-id seed (a V3
    // MrConfig VM whose key provider is not "none" keeps it; "none" draws a fresh one anyway).
    auto info = (*vmm)->info(id, false);
    if (info.ok())
      if (auto s = write_fixed_instance_info(dir, info->app_id); !s.ok()) return fail(s.error().message);
  }
  if (o.dry_run) {
    auto preview = (*vmm)->launch_preview(id);
    // A dry run leaves nothing behind: a VM it had to make for the plan goes again.
    if (made) {
      (void)(*vmm)->remove(id);
      (void)(*vmm)->wait_for(id, [](VmStatus) { return false; }, std::chrono::steady_clock::now() + std::chrono::seconds(30));
    }
    if (!preview.ok()) return fail(preview.error().message);
    for (const auto& n : preview->notices) std::cerr << "dstack-vmm run: notice: " << n << '\n';
    print_preview(*preview, o.json);
    return 0;
  }

  // The guest's host API (boot progress, keys) is served as the daemon serves it.
  auto host_api = server::HostApiServer::start(**vmm);
  if (!host_api.ok()) return fail(host_api.error().message);
  if (auto s = (*vmm)->start(id); !s.ok()) return fail(s.error().message);
  auto info = (*vmm)->info(id, false);
  std::cerr << "dstack-vmm run: VM " << id << " is running (CID " << (info.ok() ? info->cid : 0) << "); serial log "
            << (dir / "serial.log").string() << "; Ctrl-C stops it\n";
  VmManager* manager = vmm->get();
  std::thread waiter([&] {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0 || sig == SIGUSR1) return;
    log_message(LogLevel::kInfo, "vmm", "stopping VM " + id);
    (void)manager->stop(id);
  });
  auto ended = [](VmStatus s) { return s != VmStatus::kRunning && s != VmStatus::kStopping && s != VmStatus::kUnknown; };
  Result<VmStatus> last = VmStatus::kRunning;
  do last = manager->wait_for(id, ended, std::chrono::steady_clock::now() + std::chrono::hours(1));
  while (!last.ok() && last.error().code == ErrorCode::kUnavailable);
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  std::cerr << "dstack-vmm run: VM " << id << " " << (last.ok() ? std::string(vm_status_name(*last)) : last.error().message) << '\n';
  return 0;
}

}  // namespace dstackvmm::daemon
