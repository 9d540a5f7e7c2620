// SPDX-License-Identifier: Apache-2.0
// VmManager: where statuses change and who is told. The watch thread keeps each VM's process
// state current from the launcher's watch_changes(); every change goes through note_change(),
// which publishes it to subscribers and wakes wait_for().
#include <dstackvmm/vm_manager.hpp>

#include <sys/wait.h>

#include <dstackvmm/log.hpp>

#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

namespace {
// How long one watch_changes() may block: also how soon a stalled (SIGSTOPped) supervisor is
// noticed, since a live one answers at the timeout.
constexpr auto kWatchWait = std::chrono::seconds(5);
constexpr auto kRetryAfterError = std::chrono::seconds(1);
}  // namespace

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    cancel_ = std::move(other.cancel_);
    other.cancel_ = nullptr;
  }
  return *this;
}

void Subscription::reset() {
  if (cancel_) {
    auto cancel = std::move(cancel_);
    cancel_ = nullptr;
    cancel();
  }
}

VmStatus VmManager::Impl::status_of(const Vm& vm) const {
  if (vm.removing) return VmStatus::kRemoving;
  if (!vm.proc_known && !(vm.proc_from_loader && loading)) return VmStatus::kUnknown;
  bool is_running = vm.proc && vm.proc->status == ProcessStatus::kRunning;
  // While launch() starts the process, the watch thread may see it before launch() sets the
  // started flag: that is a VM coming up, not one being stopped.
  if (vm.launching) return is_running ? VmStatus::kRunning : vm.status;
  if (vm.started) return is_running ? VmStatus::kRunning : VmStatus::kExited;
  return is_running ? VmStatus::kStopping : VmStatus::kStopped;
}

std::optional<bool> VmManager::Impl::running(const std::string& id) const {
  std::lock_guard lock(mu);
  auto it = vms.find(id);
  if (it == vms.end()) return false;
  if (!it->second->proc_known) return std::nullopt;
  return it->second->proc && it->second->proc->status == ProcessStatus::kRunning;
}

Status VmManager::Impl::check_running(const std::string& id) const {
  auto r = running(id);
  if (!r) {
    std::lock_guard lock(mu);
    return make_error(ErrorCode::kUnavailable, "cannot tell whether VM " + id + " runs: " + launcher_error);
  }
  if (!*r) return make_error(ErrorCode::kFailedPrecondition, "VM " + id + " is not running");
  return {};
}

void VmManager::Impl::queue(VmEvent e) {
  pending.push_back(std::move(e));
  changed_cv.notify_all();
}

VmEvent VmManager::Impl::snapshot_of(const std::string& id, const Vm& vm) const {
  VmEvent e;
  e.kind = VmEvent::Kind::kSnapshot;
  e.id = id;
  e.status = vm.status;
  e.cid = vm.cid;
  if (channel == GuestChannel::Kind::kUserNet) e.host_api_socket = paths(id).host_api_socket();
  return e;
}

void VmManager::Impl::record(VmActivity a) {
  if (!journal_on) return;
  a.time_ms = now_ms();
  ++activity_totals[a.kind];
  if (a.kind == "guest") {
    // Metric labels must stay few whatever guests send: known names, else "other".
    bool known = a.event == "boot.progress" || a.event == "boot.error" || a.event == "shutdown.progress" || a.event == "instance.info";
    ++guest_event_totals[known ? a.event : "other"];
  }
  journal.append(std::move(a));
  changed_cv.notify_all();
}

void VmManager::Impl::note_change(const std::string& id, Vm& vm) {
  VmStatus now = status_of(vm);
  changed_cv.notify_all();  // a process change that leaves the status alone still wakes waiters
  // The launcher's whole table is applied to every VM now and then (recover, an auto-restart
  // tick): only a VM whose shown state moved gets a new revision.
  ProcessStamp stamp{.status = now, .known = vm.proc_known,
                     .state = vm.proc ? static_cast<int>(vm.proc->status) : -1,
                     .pid = vm.proc ? vm.proc->pid : std::nullopt,
                     .started_at = vm.proc ? vm.proc->started_at : std::nullopt,
                     .stopped_at = vm.proc ? vm.proc->stopped_at : std::nullopt,
                     .launcher_error_generation = launcher_error_generation};
  if (stamp != vm.seen) {
    vm.seen = stamp;
    touch(vm);
  }
  if (now == vm.status) return;
  VmActivity a;
  a.vm_id = id;
  a.kind = internal::activity_kind(vm.status, now);
  a.status = vm_status_name(now);
  if (now == VmStatus::kExited && vm.proc && vm.proc->status == ProcessStatus::kExited) {
    int ws = vm.proc->wait_status;
    if (WIFEXITED(ws)) a.exit_code = WEXITSTATUS(ws);
    else if (WIFSIGNALED(ws)) a.exit_signal = WTERMSIG(ws);
  }
  if (now == VmStatus::kExited) {
    a.time_ms = now_ms();
    record_exit(id, a);  // into this boot's launch record, with the serial log's tail
  }
  record(std::move(a));
  vm.status = now;
  VmEvent e;
  e.kind = VmEvent::Kind::kStatus;
  e.id = id;
  e.status = now;
  e.cid = vm.cid;
  if (channel == GuestChannel::Kind::kUserNet) e.host_api_socket = paths(id).host_api_socket();
  queue(std::move(e));
}

void VmManager::Impl::flush() {
  std::lock_guard deliver(hub->deliver_mu);
  for (;;) {
    VmEvent e;
    {
      std::lock_guard lock(mu);
      if (pending.empty()) return;
      e = std::move(pending.front());
      pending.pop_front();
    }
    for (auto& [sid, cb] : hub->subscribers) cb(e);
  }
}

uint64_t VmManager::Impl::updates_now() const {
  std::lock_guard lock(mu);
  return direct_updates;
}

bool VmManager::Impl::apply_processes(const Result<std::vector<ProcessInfo>>& procs, uint64_t asked_at) {
  bool skipped = false;
  {
    std::lock_guard lock(mu);
    if (!procs.ok()) {
      if (launcher_error.empty())
        log_message(LogLevel::kWarn, "vmm", "process states unknown until the launcher answers: " + procs.error().message);
      if (launcher_error != procs.error().message) ++launcher_error_generation;
      launcher_error = procs.error().message;
      for (auto& [id, vm] : vms) {
        vm->proc_known = false;
        note_change(id, *vm);
      }
    } else {
      if (!launcher_error.empty()) {
        log_message(LogLevel::kInfo, "vmm", "the launcher answers again; process states known");
        ++launcher_error_generation;
      }
      launcher_error.clear();
      std::map<std::string, const ProcessInfo*> by_id;
      for (const auto& p : *procs) by_id[p.spec.id] = &p;
      for (auto& [id, vm] : vms) {
        if (vm->fresh_as_of > asked_at) {  // it knows better since
          skipped = true;
          continue;
        }
        auto it = by_id.find(id);
        vm->proc = it == by_id.end() ? std::nullopt : process_state(*it->second);
        vm->proc_known = true;
        note_change(id, *vm);
      }
    }
  }
  flush();
  return skipped;
}

void VmManager::Impl::apply_process(const std::string& id, const Result<std::optional<ProcessInfo>>& proc) {
  {
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it == vms.end()) return;
    Vm& vm = *it->second;
    vm.proc_known = proc.ok();
    if (proc.ok()) vm.proc = process_state(*proc);
    vm.fresh_as_of = ++direct_updates;
    note_change(id, vm);
  }
  flush();
}

bool VmManager::Impl::apply_changes(const ProcessChanges& changes, uint64_t asked_at) {
  bool skipped = false;
  {
    std::lock_guard lock(mu);
    auto fresh = [&](const std::string& id) -> Vm* {
      auto it = vms.find(id);
      if (it == vms.end()) return nullptr;
      if (it->second->fresh_as_of > asked_at) {  // it knows better since
        skipped = true;
        return nullptr;
      }
      return it->second.get();
    };
    for (const auto& p : changes.changed)
      if (Vm* vm = fresh(p.spec.id)) {
        vm->proc = process_state(p);
        vm->proc_known = true;
        note_change(p.spec.id, *vm);
      }
    for (const auto& id : changes.removed)
      if (Vm* vm = fresh(id)) {
        vm->proc.reset();
        vm->proc_known = true;
        note_change(id, *vm);
      }
  }
  flush();
  return skipped;
}

void VmManager::Impl::watch_processes(std::shared_ptr<WatchLink> link, std::shared_ptr<ProcessLauncher> launcher,
                                      uint64_t generation) {
  // Each round waits for what changed since the last one and gets it in the same answer
  // (watch_changes): an exit reaches us as one message on a connection already open, and a
  // start or stop costs one entry, not the whole table. After an error, or when recover()
  // could not say at which generation it read the table (0), the whole table. An answer that
  // waited can be older than a direct answer given meanwhile (launch() asks about its VM
  // itself): that VM is left as it is, and the changes are asked for again at once, plainly.
  bool again = false;
  for (;;) {
    uint64_t asked_at;
    {
      std::unique_lock lock(link->mu);
      if (!link->impl) return;
      asked_at = link->impl->updates_now();
    }
    auto ch = again ? launcher->changes(generation) : launcher->watch_changes(generation, kWatchWait);
    std::unique_lock lock(link->mu);
    if (!link->impl) return;
    if (!ch.ok()) {
      link->impl->apply_processes(ch.error());
      // Then the whole table, asked plainly: a launcher call that finds the supervisor gone
      // starts a new one (a long poll does not), which re-adopts the guests.
      generation = 0;
      again = true;
      link->cv.wait_for(lock, kRetryAfterError, [&] { return !link->impl; });
      continue;
    }
    again = ch->complete ? link->impl->apply_processes(std::move(ch->changed), asked_at)
                         : link->impl->apply_changes(*ch, asked_at);
    if (!again && ch->generation) generation = ch->generation;
  }
}

Subscription VmManager::subscribe(std::function<void(const VmEvent&)> callback) {
  auto hub = impl_->hub;
  std::lock_guard deliver(hub->deliver_mu);  // no event is delivered between snapshot and registration
  std::vector<VmEvent> snapshot;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, vm] : impl_->vms) snapshot.push_back(impl_->snapshot_of(id, *vm));
  }
  // Outside mu, so the callback may call the manager's const methods; changes made meanwhile
  // wait in `pending` and follow once deliver_mu is released.
  for (const auto& e : snapshot) callback(e);
  uint64_t sid = hub->next_id++;
  hub->subscribers[sid] = std::move(callback);
  std::weak_ptr<EventHub> weak = hub;
  return Subscription([weak, sid] {
    if (auto h = weak.lock()) {
      std::lock_guard deliver(h->deliver_mu);
      h->subscribers.erase(sid);
    }
  });
}

Result<VmStatus> VmManager::wait_for(const std::string& id, const std::function<bool(VmStatus)>& accept,
                                     std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(impl_->mu);
  for (;;) {
    auto it = impl_->vms.find(id);
    if (it == impl_->vms.end() && impl_->loading) {  // maybe one of the folders not read yet
      impl_->loaded_cv.wait(lock, [&] { return !impl_->loading; });
      continue;
    }
    if (it == impl_->vms.end()) return make_error(ErrorCode::kNotFound, "VM not found");
    VmStatus s = impl_->status_of(*it->second);
    if (accept(s)) return s;
    if (impl_->changed_cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      auto again = impl_->vms.find(id);
      if (again == impl_->vms.end()) return make_error(ErrorCode::kNotFound, "VM not found");
      VmStatus last = impl_->status_of(*again->second);
      if (accept(last)) return last;
      return make_error(ErrorCode::kUnavailable, "timed out waiting for VM " + id + " (it is " +
                                                     std::string(vm_status_name(last)) + ")");
    }
  }
}

VmActivityPage VmManager::activity(uint64_t after, size_t max, const std::string& vm_id,
                                  std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(impl_->mu);
  for (;;) {
    VmActivityPage page = impl_->journal.read(after, max, vm_id);
    if (!page.entries.empty() || page.gap) return page;
    // Nothing for this reader up to last_seq: only newer entries need looking at next time.
    if (page.last_seq > after) after = page.last_seq;
    uint64_t seen = page.last_seq;
    if (!impl_->changed_cv.wait_until(lock, deadline, [&] { return impl_->journal.last_seq() != seen; }))
      return impl_->journal.read(after, max, vm_id);
  }
}

ManagerStats VmManager::stats() const {
  ManagerStats st;
  std::lock_guard lock(impl_->mu);
  for (const auto& [id, vm] : impl_->vms) {
    ++st.vms_by_status[std::string(vm_status_name(impl_->status_of(*vm)))];
    if (vm->manifest.gpus) st.gpus_used += vm->manifest.gpus->gpus.size();
    st.host_ports_used += vm->manifest.port_map.size();
  }
  st.activity_totals = impl_->activity_totals;
  st.guest_event_totals = impl_->guest_event_totals;
  st.guest_panics_dropped = impl_->guest_panics_dropped;
  st.vms_described = impl_->described;
  st.cids_used = static_cast<uint32_t>(impl_->cids.used());
  st.cids_total = impl_->opt.config.cvm.cid_pool_size;
  return st;
}

GuestChannel::Kind VmManager::guest_channel() const { return impl_->channel; }

}  // namespace dstackvmm
