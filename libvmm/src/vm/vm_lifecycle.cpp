// SPDX-License-Identifier: Apache-2.0
// VmManager's lifecycle: start, stop, shutdown, remove, and guest notifications.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_id.hpp>
#include <dstackvmm/vm_logs.hpp>

#include "base/fs_util.hpp"
#include "process/spawn.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

namespace internal {

std::optional<int> orphan_qemu_pid(const VmPaths& paths) {
  auto text = read_file(paths.pid_file());
  if (!text.ok()) return std::nullopt;
  int pid = std::atoi(text->c_str());
  if (pid <= 1 || ::kill(pid, 0) != 0) return std::nullopt;
  auto cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok() || cmdline->find(paths.dir.string() + "/") == std::string::npos) return std::nullopt;
  return pid;
}

bool kill_and_wait(int pid, std::chrono::milliseconds timeout) {
  int pidfd = open_pidfd(pid);
  if (pidfd < 0) return ::kill(pid, 0) != 0;  // gone already (or no pidfds: judged by kill 0 below)
  ::kill(pid, SIGKILL);
  pollfd p{pidfd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (rc < 0 && errno == EINTR);
  ::close(pidfd);
  return rc > 0;
}

}  // namespace internal

uint64_t VmManager::Impl::now_ms() const {
  if (opt.now_ms) return opt.now_ms();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<std::shared_ptr<Vm>> VmManager::Impl::find(const std::string& id) const {
  if (auto s = validate_vm_id(id); !s.ok()) return s.error();
  std::unique_lock lock(mu);
  if (unsettled(id)) loaded_cv.wait(lock, [&] { return !loading; });
  auto it = vms.find(id);
  if (it == vms.end()) return make_error(ErrorCode::kNotFound, "VM not found");
  return it->second;
}

bool VmManager::Impl::unsettled(const std::string& id) const {
  if (!loading) return false;
  auto it = vms.find(id);
  return it == vms.end() || !it->second->proc_known;
}

void VmManager::Impl::wait_loaded() const {
  std::unique_lock lock(mu);
  loaded_cv.wait(lock, [&] { return !loading; });
}

bool VmManager::wait_loaded(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(impl_->mu);
  return impl_->loaded_cv.wait_until(lock, deadline, [&] { return !impl_->loading; });
}

std::string VmManager::Impl::host_api_url() const {
  std::string port = std::to_string(opt.config.host_api.port);
  if (channel == GuestChannel::Kind::kVsock) return "vsock://2:" + port + "/api";
  return "http://" + std::string(GuestChannel::kGuestHostApiIp) + ":" + port + "/api";
}

GuestChannel VmManager::Impl::channel_of(const Vm& vm, const VmPaths& p) const {
  GuestChannel ch;
  ch.kind = channel;
  ch.agent_port = vm.agent_port;
  ch.host_api_socket = p.host_api_socket();
  return ch;
}

Status VmManager::Impl::wait_stopped(const std::string& id, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::unique_lock lock(mu);
    auto gone = [&] {
      auto it = vms.find(id);
      if (it == vms.end()) return true;
      const Vm& vm = *it->second;
      return vm.proc_known && !(vm.proc && vm.proc->status == ProcessStatus::kRunning);
    };
    if (!changed_cv.wait_until(lock, deadline, gone)) {
      std::string why = launcher_error.empty() ? "QEMU of VM " + id + " did not exit within " + std::to_string(timeout.count() / 1000) + " s"
                                               : "cannot tell whether QEMU of VM " + id + " exited: " + launcher_error;
      return make_error(ErrorCode::kQemu, why);
    }
  }
  // The launcher may not know every QEMU of this workdir (a supervisor that died before it
  // could save its table): whatever the pid file names and still runs there goes too.
  if (auto pid = internal::orphan_qemu_pid(paths(id))) {
    log_message(LogLevel::kWarn, "vmm", "VM " + id + ": killing QEMU pid " + std::to_string(*pid) + " that no launcher knows");
    if (!internal::kill_and_wait(*pid, std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration(std::chrono::seconds(1))))))
      return make_error(ErrorCode::kQemu, "QEMU of VM " + id + " (pid " + std::to_string(*pid) + ") did not exit");
  }
  return {};
}

void VmManager::Impl::release(const std::string& id) {
  std::optional<uint32_t> held;  // given back to the host-wide registry once mu is released
  {
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it == vms.end()) return;
    VmEvent e;
    e.kind = VmEvent::Kind::kRemoved;
    e.id = id;
    e.status = VmStatus::kRemoving;
    e.cid = it->second->cid;
    cids.release(it->second->cid);
    held = it->second->cid;
    if (serial_watch) serial_watch->forget(id);
    ports.release(id);
    agent_ports.erase(it->second->agent_port);
    forget_files(*it->second);
    vms.erase(it);
    listing_moved();
    queue(std::move(e));
    VmActivity a;
    a.vm_id = id;
    a.kind = "removed";
    a.status = "removed";
    record(std::move(a));
  }
  // The registry's file lock is never taken under mu: another VMM holding it would otherwise
  // stall every listing, health probe and stop of this one.
  if (cid_registry && held) release_registry_cid(*held, id);
  flush();
}

void VmManager::Impl::release_registry_cid(uint32_t cid, const std::string& id) {
  std::lock_guard lock(registry_release_mu);
  auto now = std::chrono::steady_clock::now();
  if (registry_releases.empty()) registry_release_first = now;
  registry_releases.emplace_back(cid, id);
  registry_release_last = now;
  if (registry_flush_queued) return;
  registry_flush_queued = true;
  registry_flusher.post([this] {
    {
      std::unique_lock wait(registry_release_mu);
      for (;;) {
        auto due = registry_release_first + kRegistryMaxDelay;
        if (stopping_removals == 0) due = std::min(due, registry_release_last + kRegistryQuiet);
        if (registry_flush_now || std::chrono::steady_clock::now() >= due) break;
        registry_release_cv.wait_until(wait, due);
      }
      registry_flush_queued = false;
    }
    flush_registry_releases();
  });
}

void VmManager::Impl::flush_registry_releases() {
  std::vector<std::pair<uint32_t, std::string>> batch;
  {
    std::lock_guard lock(registry_release_mu);
    batch.swap(registry_releases);
  }
  if (cid_registry) cid_registry->release_all(batch);
}

Status VmManager::Impl::stop_process(const std::string& id) {
  std::optional<int> pid;
  {
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it != vms.end() && it->second->proc && it->second->proc->status == ProcessStatus::kRunning) pid = it->second->proc->pid;
    // The launcher's own table says nothing runs (wait_stopped's test): no call to make.
    if (it != vms.end() && !pid && it->second->proc_known) return {};
  }
  // A TPM VM's process is the launcher (vm_launcher.hpp): told first, it stops QEMU and swtpm
  // in order and removes the TPM's socket; the launcher's kill below is what is left if not.
  // Told by its command line, as upstream tells it (args[0] == "vm-launcher").
  if (pid && *pid > 1) {
    auto cmdline = internal::read_file("/proc/" + std::to_string(*pid) + "/cmdline");
    if (cmdline.ok() && cmdline->find(std::string("\0vm-launcher\0", 13)) != std::string::npos) {
      if (int fd = internal::open_pidfd(*pid); fd >= 0) {
        ::syscall(SYS_pidfd_send_signal, fd, SIGTERM, nullptr, 0);
        ::close(fd);
        (void)wait_stopped(id, std::chrono::seconds(10));
      }
    }
  }
  return launcher->stop(id);
}

void VmManager::Impl::finish_remove(const std::string& id, std::shared_ptr<Vm> vm) {
  std::lock_guard op(vm->op);
  (void)stop_process(id);
  if (auto s = wait_stopped(id, opt.stop_timeout); !s.ok()) {
    // Never delete a workdir under a QEMU that may still run: the VM stays `removing`, and
    // the marker makes the next start-up try again.
    log_message(LogLevel::kError, "vmm", "removing VM " + id + " postponed: " + s.error().message);
    std::lock_guard lock(mu);
    vm->degraded = "removal postponed: " + s.error().message;
    touch(*vm);
    return;
  }
  bool has_entry = true;  // in the launcher's table, as far as its last answer says
  {
    std::lock_guard lock(mu);
    has_entry = vm->launcher_may_hold();
  }
  delete_removed(id, has_entry);
  release(id);
}

void VmManager::Impl::post_finish_remove(const std::string& id, std::shared_ptr<Vm> vm) {
  {
    std::lock_guard lock(registry_release_mu);
    ++stopping_removals;
  }
  removals.post([this, id, vm = std::move(vm)] {
    finish_remove(id, vm);
    std::lock_guard lock(registry_release_mu);
    --stopping_removals;
    registry_release_cv.notify_all();
  });
}

void VmManager::Impl::wait_removal_quiet(std::chrono::steady_clock::time_point posted) {
  std::unique_lock wait(removal_quiet_mu);
  for (;;) {
    auto due = std::min(last_removal + kRemovalQuiet, posted + kRemovalMaxDelay);
    if (removals_now || std::chrono::steady_clock::now() >= due) return;
    removal_quiet_cv.wait_until(wait, due);
  }
}

void VmManager::Impl::delete_removed(const std::string& id, bool has_entry) {
  if (has_entry) (void)launcher->remove(id);
  // A launch record write in flight finishes first; any later one finds the VM removing or
  // gone and writes nothing. Held only as a barrier, so that a burst's folders are deleted
  // side by side.
  { std::lock_guard no_records(records_mu); }
  if (auto s = internal::remove_workdir(paths(id)); !s.ok())
    log_message(LogLevel::kError, "vmm", "removing VM " + id + ": " + s.error().message);
  log_message(LogLevel::kInfo, "vmm", "removed VM " + id);
}


namespace {
constexpr size_t kMaxEventName = 128;
constexpr double kNotifyBurst = 50, kNotifyPerSecond = 10;
}  // namespace

Status VmManager::Impl::handle_notify(const std::string& id, const std::string& event, const std::string& payload) {
  if (event.empty() || event.size() > kMaxEventName)
    return make_error(ErrorCode::kInvalidArgument, "event name must be 1 to " + std::to_string(kMaxEventName) + " bytes");
  if (payload.size() > 4096) {
    log_message(LogLevel::kWarn, "host-api", "VM " + id + ": ignoring " + event + " with a payload over 4 KiB");
    return {};
  }
  auto vm = find(id);
  if (!vm.ok()) return vm.error();
  {
    std::lock_guard lock(mu);
    Vm& v = **vm;
    uint64_t now = now_ms();
    if (v.notify_tokens < 0) v.notify_tokens = kNotifyBurst;
    else v.notify_tokens = std::min(kNotifyBurst, v.notify_tokens + (now - std::min(now, v.notify_refilled_ms)) * kNotifyPerSecond / 1000.0);
    v.notify_refilled_ms = now;
    if (v.notify_tokens < 1)
      return make_error(ErrorCode::kResourceExhausted, "too many notifications: at most " + std::to_string(int(kNotifyPerSecond)) +
                                                           " a second (bursts of " + std::to_string(int(kNotifyBurst)) + ")");
    v.notify_tokens -= 1;
  }
  VmPaths p = paths(id);
  if (event == "instance.info")
    if (auto s = internal::write_file_atomic(p.instance_info(), payload); !s.ok()) return s;
  bool powering_off = event == "shutdown.progress" && payload == "powering off";
  if (powering_off)
    if (auto s = internal::write_state(p, false); !s.ok()) return s;
  std::optional<std::string> instance;
  if (event == "instance.info") instance = internal::read_instance_id(p);  // read before taking mu
  {
    std::lock_guard lock(mu);
    Vm& v = **vm;
    if (event == "instance.info") v.instance_id = instance;
    add_event(v, {event, payload, now_ms()});
    transition(id, v, {.kind = VmTransition::Kind::kGuestReport, .event = event, .payload = payload});
    if (powering_off) transition(id, v, {.kind = VmTransition::Kind::kShutdownAsked});
    VmEvent e;
    e.kind = VmEvent::Kind::kGuest;
    e.id = id;
    e.status = v.status;
    e.cid = v.cid;
    e.guest_event = v.events.back();
    queue(std::move(e));
    VmActivity a;
    a.vm_id = id;
    a.kind = "guest";
    a.status = vm_status_name(v.status);
    a.event = event;
    a.detail = payload;
    record(std::move(a));
  }
  flush();
  return {};
}

void VmManager::Impl::reset_restart(Vm& vm) {
  if (!vm.restart) vm.restart.emplace(opt.config.cvm.auto_restart);
  vm.restart->reset();
  if (vm.degraded) touch(vm);
  vm.degraded.reset();  // a user's start or stop begins afresh
}

Status VmManager::start(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  std::lock_guard op((*vm)->op);
  {
    std::lock_guard lock(impl_->mu);
    impl_->reset_restart(**vm);
  }
  return impl_->launch(id, **vm);
}

Status VmManager::stop(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  std::lock_guard op((*vm)->op);
  // The intent is recorded before QEMU is told (a daemon killed in between still finds it),
  // and synced while QEMU exits rather than before: the kill waits on no disk.
  auto intent = internal::write_state_unsynced(impl_->paths(id), false);
  if (!intent.ok()) return intent.error();
  {
    std::lock_guard lock(impl_->mu);
    impl_->transition(id, **vm, {.kind = VmTransition::Kind::kStopAsked});
  }
  impl_->flush();
  auto stopped = impl_->stop_process(id);
  if (auto s = internal::sync_state(impl_->paths(id), *intent); !s.ok()) return s;
  if (!stopped.ok() && stopped.error().code != ErrorCode::kNotFound) return stopped;
  return impl_->wait_stopped(id, impl_->opt.stop_timeout);
}

Status VmManager::shutdown(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  if (auto s = impl_->check_running(id); !s.ok()) return s;
  // The user's intent is recorded first, so neither a silent guest nor auto-restart undoes it.
  if (auto s = internal::write_state(impl_->paths(id), false); !s.ok()) return s;
  GuestChannel ch;
  uint32_t cid;
  {
    std::lock_guard lock(impl_->mu);
    impl_->transition(id, **vm, {.kind = VmTransition::Kind::kShutdownAsked});
    ch = impl_->channel_of(**vm, impl_->paths(id));
    cid = (*vm)->cid;
  }
  impl_->flush();
  auto agent = internal::call_guest_agent(ch, cid, "Shutdown", impl_->opt.agent_timeout);
  if (agent.ok()) return {};
  if (!impl_->opt.config.cvm.qmp_socket)
    return agent.error().context("guest agent Shutdown failed and QMP is off ([cvm] qmp_socket)");
  auto qmp = QmpClient::connect(impl_->paths(id).qmp_socket(), impl_->opt.agent_timeout);
  if (!qmp.ok()) return qmp.error().context("guest agent and QMP both unreachable");
  log_message(LogLevel::kInfo, "vmm", "VM " + id + ": guest agent did not answer (" + agent.error().message +
                                          "); sending ACPI powerdown");
  return (*qmp)->system_powerdown();
}

Status VmManager::remove(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  // A VM with nothing to stop leaves at once, as upstream's RemoveVm: gone from listings, its
  // name, CID and ports free when the call returns; its folder is deleted behind it. One whose
  // process runs, or whose start, stop or create is in flight (op is held), shows `removing`
  // until its process has stopped, and leaves then.
  std::unique_lock op((*vm)->op, std::try_to_lock);
  internal::VmPaths p = impl_->paths(id);
  // A QEMU no launcher knows (an earlier daemon's or supervisor's, named by the pid file) may
  // still run in the folder, holding the CID: the slow path kills it before anything goes.
  bool orphan = op.owns_lock() && internal::orphan_qemu_pid(p).has_value();
  bool at_once = false, has_entry = true;
  {
    std::lock_guard lock(impl_->mu);
    Vm& v = **vm;
    if (v.removing) return {};
    at_once = op.owns_lock() && !orphan && v.proc_known && !v.launching && !v.creating &&
              !(v.proc && v.proc->status == ProcessStatus::kRunning);
    has_entry = v.launcher_may_hold();
    impl_->transition(id, v, {.kind = VmTransition::Kind::kRemoving});
  }
  impl_->flush();
  // Its console is no longer watched for panics: the marker and the deletions to come are no
  // output of its guest, and would wake the watch for nothing.
  if (impl_->serial_watch) impl_->serial_watch->forget(id);
  // The marker makes an interrupted removal resume when the daemon starts again, whether the
  // VM had left the list or not. It is not synced: a daemon killed at any point finds it (the
  // page cache outlives the process), and after a power cut the journal has kept it ahead of
  // any deletion it precedes, or lost both, when the VM is simply still there. A burst of
  // removals then costs no fsync per VM. It is a second name of the manifest, which makes no
  // new inode (see link_marker).
  if (auto s = internal::link_marker(p.manifest(), p.removing_marker()); !s.ok()) return s;
  if (!at_once) {
    op.unlock();
    impl_->post_finish_remove(id, *vm);
    return {};
  }
  impl_->release(id);
  op.unlock();
  auto posted = std::chrono::steady_clock::now();
  {
    std::lock_guard quiet(impl_->removal_quiet_mu);
    impl_->last_removal = posted;
  }
  impl_->removals.post([impl = impl_.get(), id, has_entry, posted] {
    impl->wait_removal_quiet(posted);
    impl->delete_removed(id, has_entry);
  });
  return {};
}

Status VmManager::notify(const std::string& id, const std::string& event, const std::string& payload) {
  return impl_->handle_notify(id, event, payload);
}

Result<std::string> VmManager::guest_agent_call(const std::string& id, std::string_view method) const {
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  if (auto s = impl_->check_running(id); !s.ok()) return s.error();
  GuestChannel ch;
  uint32_t cid;
  {
    std::lock_guard lock(impl_->mu);
    ch = impl_->channel_of(**vm, impl_->paths(id));
    cid = (*vm)->cid;
  }
  return internal::call_guest_agent(ch, cid, method, impl_->opt.agent_timeout);
}

Result<std::unique_ptr<QmpClient>> VmManager::qmp(const std::string& id) const {
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  if (!impl_->opt.config.cvm.qmp_socket)
    return make_error(ErrorCode::kFailedPrecondition, "QMP is off for this VMM ([cvm] qmp_socket = false)");
  if (auto s = impl_->check_running(id); !s.ok()) return s.error();
  return QmpClient::connect(impl_->paths(id).qmp_socket(), impl_->opt.agent_timeout);
}

}  // namespace dstackvmm

namespace dstackvmm {

// One VM's turn of auto-restart, judged under mu: kWait when nothing is to be done (it runs,
// it should not run, or its state changed since the tick's table); an exhausted budget is
// told once, as an event and in the journal.
RestartDecision VmManager::Impl::judge_restart(const std::string& id, Vm& vm, uint64_t now_s) {
  std::lock_guard lock(mu);
  if (!vm.proc_known) return {};  // changed since the tick's list: judged next tick
  bool is_running = vm.proc && vm.proc->status == ProcessStatus::kRunning;
  if (!vm.restart) vm.restart.emplace(opt.config.cvm.auto_restart);
  if (vm.removing || (!is_running && !vm.started)) {
    vm.restart->reset();
    return {};
  }
  if (is_running) {
    if (vm.restart->observe_running(now_s)) log_message(LogLevel::kInfo, "auto-restart", "VM " + id + " ran long enough; retries reset");
    return {};
  }
  RestartDecision d = vm.restart->observe_exited(now_s);
  if (d.kind == RestartDecision::Kind::kExhausted) {
    add_event(vm, {"vmm.auto_restart.exhausted",
                   "Automatic restart stopped after " + std::to_string(d.attempt) + " failed attempts", now_ms()});
    VmActivity a;
    a.vm_id = id;
    a.kind = "restart_exhausted";
    a.status = vm_status_name(vm.status);
    a.detail = vm.events.back().body;
    record(std::move(a));
  }
  return d;
}

// The restart itself; a user's operation in progress wins (the VM is looked at next tick).
void VmManager::Impl::restart(const std::string& id, Vm& vm, uint32_t attempt) {
  std::unique_lock op(vm.op, std::try_to_lock);
  if (!op.owns_lock()) return;
  {
    std::lock_guard lock(mu);
    if (!vm.started || vm.removing) return;  // stopped while we decided
    VmActivity a;
    a.vm_id = id;
    a.kind = "restarting";
    a.status = vm_status_name(vm.status);
    a.detail = "auto_restart attempt " + std::to_string(attempt);
    record(std::move(a));
  }
  log_message(LogLevel::kInfo, "auto-restart", "restarting VM " + id + " (attempt " + std::to_string(attempt) + ")");
  if (auto s = launch(id, vm); !s.ok()) log_message(LogLevel::kError, "auto-restart", "VM " + id + ": " + s.error().message);
}

void VmManager::auto_restart_tick() {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  if (!impl_->opt.config.cvm.auto_restart.enabled) return;
  std::vector<std::pair<std::string, std::shared_ptr<Vm>>> all;
  {
    std::lock_guard lock(impl_->mu);
    all.assign(impl_->vms.begin(), impl_->vms.end());
  }
  uint64_t now = impl_->now_ms() / 1000;
  // One look at the process table per tick, which also refreshes the cache. A launcher that
  // cannot answer makes every state unknown, and nothing is restarted on a guess. Asked as
  // changes since 0: the whole table, its specs brief (no command lines to read).
  uint64_t asked_at = impl_->updates_now();
  auto table = impl_->launcher->changes(0);
  Result<std::vector<ProcessInfo>> procs = entries_of(table);
  impl_->apply_processes(procs, asked_at);
  if (!procs.ok()) {
    log_message(LogLevel::kWarn, "auto-restart", "skipped: " + procs.error().message);
    return;
  }
  for (auto& [id, vm] : all) {
    RestartDecision d = impl_->judge_restart(id, *vm, now);
    if (d.kind == RestartDecision::Kind::kScheduled)
      log_message(LogLevel::kWarn, "auto-restart", "VM " + id + " exited; restarting in " + std::to_string(d.delay) + " s");
    if (d.kind == RestartDecision::Kind::kExhausted)
      log_message(LogLevel::kError, "auto-restart", "VM " + id + ": gave up after " + std::to_string(d.attempt) + " attempts");
    if (d.kind == RestartDecision::Kind::kRestart) impl_->restart(id, *vm, d.attempt);
  }
}

}  // namespace dstackvmm
