// SPDX-License-Identifier: Apache-2.0
// VmManager: one start of a VM, as a short sequence of steps, each in one place. The plan
// (what QEMU runs, what the guest is handed) is decided first with no side effect
// (plan_launch); then the started flag goes to disk, the CID is checked host-wide, the disk
// made, the guest's files written, the logs begun afresh, and the process started. A step
// that fails puts the started flag back as it was.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_logs.hpp>

#include "base/fs_util.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

// One start, as its steps share it.
struct VmManager::Impl::Launch {
  Impl& im;
  const std::string& id;
  Vm& vm;
  VmPaths p;
  VmManifest manifest;
  bool was_started = false;

  // A failed launch leaves the flag as it was: a user's start of a stopped VM leaves it
  // stopped; a restart of an exited one leaves it to be tried again (or given up on).
  Status undo(Error e) const {
    if (!was_started) (void)internal::write_state(p, false);
    return e;
  }

  // The VM runs (`proc`, as the launcher said): its state in one change, published.
  void mark_started(const Result<std::optional<ProcessInfo>>& proc, bool shared_ro, bool already) {
    {
      std::lock_guard lock(im.mu);
      im.transition(id, vm, {.kind = VmTransition::Kind::kStarted, .proc = &proc, .shared_ro = shared_ro, .already = already});
    }
    im.flush();
  }

  // Host-wide, the CID must still be this VM's: another VMM may have taken it while this one
  // was away (its VMs stopped), and two guests on one CID break each other's vsock.
  Status reserve_cid() {
    if (!im.cid_registry) return {};
    uint32_t cid;
    {
      std::lock_guard lock(im.mu);
      cid = vm.cid;
    }
    if (auto r = im.cid_registry->reserve(id, cid); !r.ok()) return r.error();
    return {};
  }

  // The VM's disk, made once: on the image's own disk, or empty (from a template: see
  // DiskTemplates). QEMU runs as [cvm] user (through sudo): the disk must be writable by that
  // user's group.
  Status prepare_disk(const Image& image) {
    const ManagerOptions& opt = im.opt;
    std::error_code ec;
    if (!std::filesystem::exists(p.hda(), ec)) {
      Status made = image.hda ? internal::run_command({opt.qemu_img, "create", "-q", "-f", "qcow2", "-o",
                                                       "backing_file=" + image.hda->string(), "-o", "backing_fmt=qcow2",
                                                       p.hda().string(), std::to_string(manifest.disk_size) + "G"},
                                                      "Failed to create disk")
                              : im.disks->create(p.hda(), manifest.disk_size);
      if (!made.ok()) return made;
    }
    if (!opt.config.cvm.user.empty() && ::chmod(p.hda().c_str(), 0660) != 0)
      return make_error(ErrorCode::kIo, "cannot chmod " + p.hda().string() + ": " + std::strerror(errno));
    return {};
  }

  // Each boot starts its logs afresh (the last ones kept as backups) behind a marker, and the
  // serial watch follows this boot's console only.
  void begin_boot_logs() {
    std::error_code ec;
    std::filesystem::remove(p.serial_pty(), ec);
    std::filesystem::remove(p.qmp_socket(), ec);
    const auto& rotation = im.opt.config.cvm.log;
    std::string stamp = rfc3339_utc(im.now_ms() / 1000);
    for (const auto& log : {p.serial_log(), p.stdout_log(), p.stderr_log()}) {
      if (!std::filesystem::exists(log, ec)) continue;
      if (rotation.max_bytes > 0) (void)rotate_log(log, rotation.max_backups, stamp);
      std::ofstream(log, std::ios::app) << "\n===== boot @ " << stamp << " =====\n";
    }
    im.follow_serial(id);
  }

  ProcessSpec process_spec(const LaunchPlan& plan) const {
    ProcessSpec spec;
    spec.id = id;
    spec.name = manifest.name;
    spec.argv = plan.process_argv;
    spec.cwd = p.dir;
    spec.stdout_path = p.stdout_log();
    spec.stderr_path = p.stderr_log();
    spec.pid_file = p.pid_file();
    spec.cid = plan.inputs.cid;
    spec.note = R"({"kind":"cvm","live_for":null,"serial_logappend":true})";
    return spec;
  }

  // Tells subscribers the VM is about to start, so a host-API server listens for it before its
  // QEMU connects.
  void announce_launching() {
    {
      std::lock_guard lock(im.mu);
      im.transition(id, vm, {.kind = VmTransition::Kind::kLaunching});
    }
    im.flush();
  }

  void launch_failed() {
    {
      std::lock_guard lock(im.mu);
      im.transition(id, vm, {.kind = VmTransition::Kind::kLaunchFailed});
    }
    im.flush();
  }

  // What this start does differently from the config: logged, and kept as the VM's events.
  void note_notices(const std::vector<std::string>& notices) {
    if (notices.empty()) return;
    std::lock_guard lock(im.mu);
    for (const auto& n : notices) {
      log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + n);
      im.add_event(vm, {"vmm.notice", n, im.now_ms()});
    }
  }
};

Status VmManager::Impl::write_guest_files(const VmPaths& p, const LaunchPlan& plan) {
  const internal::GuestFiles& g = plan.guest;
  if (auto s = internal::make_dirs(p.shared()); !s.ok()) return s;
  // The seed the V3 document's instance id comes from goes first: a crash before the
  // sys-config is rewritten leaves an older document, which the next start replaces.
  if (g.instance_info)
    if (auto s = internal::write_file_atomic(p.instance_info(), *g.instance_info); !s.ok()) return s.error().context("failed to write instance info");
  // What follows is rebuilt at every start: replaced whole (a reader never sees half of it)
  // but not synced, since a power cut that loses it also ends the QEMU it was written for.
  if (auto s = internal::replace_file(p.sys_config(), g.sys_config); !s.ok()) return s.error().context("Failed to write vm config");
  std::error_code ec;
  if (g.tee_simulator) {
    if (auto s = internal::replace_file(p.tee_simulator(), *g.tee_simulator); !s.ok())
      return s.error().context("failed to write TEE simulator config");
  } else if (std::filesystem::remove(p.tee_simulator(), ec); ec) {
    return make_error(ErrorCode::kIo, "failed to remove stale TEE simulator config: " + ec.message());
  }
  if (opt.config.cvm.host_share_mode == "vhd")
    if (auto s = internal::build_vhd_share(p); !s.ok()) return s;
  if (plan.launch_spec) {
    // TPM state lives in swtpm/ across boots (and goes with the VM's folder).
    if (::mkdir(p.swtpm_dir().c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(ErrorCode::kIo, "failed to create swtpm state directory " + p.swtpm_dir().string() + ": " + std::strerror(errno));
    if (std::filesystem::remove(p.swtpm_socket(), ec); ec)
      return make_error(ErrorCode::kIo, "failed to remove stale swtpm socket: " + ec.message());
    if (auto s = internal::replace_file(p.launch_spec(), launch_spec_json(*plan.launch_spec)); !s.ok())
      return s.error().context("failed to write VM launch specification");
  }
  return {};
}

Status VmManager::Impl::launch(const std::string& id, Vm& vm, bool fresh) {
  Launch l{*this, id, vm, paths(id), {}, false};
  {
    std::lock_guard lock(mu);
    if (vm.removing) return make_error(ErrorCode::kFailedPrecondition, "VM is being removed");
    l.manifest = vm.manifest;
    l.was_started = vm.started;
  }
  auto image = load_image(opt.config.image.path, l.manifest.image);
  if (!image.ok()) return image.error().context("Failed to load image");
  bool shared_ro = image->metadata.shared_ro;

  // Asked now, not from the cache: a second QEMU for one VM must never start. (A fresh VM
  // has none: the round trip was ~0.8 ms of a create's path to QEMU.)
  Result<std::optional<ProcessInfo>> live = std::optional<ProcessInfo>{};
  if (!fresh) {
    live = launcher->info(id);
    apply_process(id, live);
  }
  if (!live.ok())
    return make_error(ErrorCode::kUnavailable, "cannot tell whether VM " + id + " runs: " + live.error().message);
  bool already = *live && (*live)->status == ProcessStatus::kRunning;
  // On disk first, so a crash from here on leaves a VM that should run. In memory the flag is
  // set together with the process it stands for, so no one ever sees a started VM without
  // its QEMU (that would read as "exited" until the launcher has it).
  if (!internal::read_state(l.p))  // (a create that starts its VM wrote it already, synced)
    if (auto s = internal::write_state(l.p, true); !s.ok()) return s;
  refresh_cache(id, vm);
  if (already) {
    l.mark_started(live, shared_ro, true);
    return {};
  }
  // A QEMU of this workdir that no launcher knows (its supervisor died without saving): the
  // VM does run, so the started flag stays, and nothing is started beside it.
  if (auto pid = internal::orphan_qemu_pid(l.p)) {
    l.mark_started(live, shared_ro, false);
    return make_error(ErrorCode::kFailedPrecondition,
                      "VM " + id + " is already running as pid " + std::to_string(*pid) +
                          " (left by an earlier daemon or supervisor); stop the VM to end it");
  }
  if (auto s = l.reserve_cid(); !s.ok()) return l.undo(s.error());
  auto plan = plan_launch(id, l.manifest, *image);
  if (!plan.ok()) return l.undo(plan.error());
  if (auto s = check_hugepages(opt.sysfs_root, l.manifest, plan->inputs.numa); !s.ok()) return l.undo(s.error());
  if (auto s = l.prepare_disk(*image); !s.ok()) return l.undo(s.error());
  if (auto s = write_guest_files(l.p, *plan); !s.ok()) return l.undo(s.error());
  l.begin_boot_logs();

  l.announce_launching();
  uint64_t started_ms = now_ms();
  if (auto started = launcher->start(l.process_spec(*plan)); !started.ok()) {
    l.launch_failed();
    return l.undo(started.error().context("failed to start process " + id));
  }
  record_launch(id, *plan, started_ms);
  l.note_notices(plan->notices);
  auto proc = launcher->info(id);
  if (cid_registry && proc.ok() && *proc && (*proc)->pid) (void)cid_registry->add_holder(plan->inputs.cid, id, *(*proc)->pid);
  l.mark_started(proc, shared_ro, false);
  log_message(LogLevel::kInfo, "vmm", "started VM " + id + " (" + l.manifest.name + ")");
  return {};
}

}  // namespace dstackvmm
