// SPDX-License-Identifier: Apache-2.0
// VmManager: the one place a VM's lifecycle state changes (transition()). The launcher's word
// on the process comes in through apply_process(); both end in note_change(), which derives
// the status (status_of) and publishes it. Every change describe() would show gives the VM a
// new revision (touch()), which listings use to skip what did not change.
#include "vm/vm_manager_impl.hpp"

#include <atomic>

namespace dstackvmm {

uint64_t internal::next_revision() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

void VmManager::Impl::touch(Vm& vm) const {
  vm.revision = internal::next_revision();
  listing_revision = vm.revision;
}

void VmManager::Impl::listing_moved() const {
  order_stale = true;
  listing_revision = internal::next_revision();
}

void VmManager::Impl::add_event(Vm& vm, GuestEvent e) {
  vm.events.push_back(std::move(e));
  while (vm.events.size() > std::max<uint32_t>(1, opt.config.event_buffer_size)) vm.events.pop_front();
  touch(vm);
}

void VmManager::Impl::transition(const std::string& id, Vm& vm, const VmTransition& t) {
  using K = VmTransition::Kind;
  touch(vm);  // each kind changes something a VmInfo shows (launching, boot_progress, ...)
  switch (t.kind) {
    case K::kLaunching:  // QEMU is about to start: a host-API server listens for it first
      vm.launching = true;
      {
        VmEvent e;
        e.kind = VmEvent::Kind::kLaunching;
        e.id = id;
        e.status = status_of(vm);
        e.cid = vm.cid;
        if (channel == GuestChannel::Kind::kUserNet) e.host_api_socket = paths(id).host_api_socket();
        queue(std::move(e));
      }
      return;  // the status has not changed
    case K::kLaunchFailed:
      vm.launching = false;
      break;
    case K::kStarted:  // it runs (t.proc, as the launcher said), just started or already running
      vm.started = true;
      vm.launching = false;
      vm.boot_progress = t.shared_ro ? (t.already ? "running" : "booting") : "N/A";
      vm.shutdown_progress = t.shared_ro ? "" : "N/A";
      vm.boot_error.clear();
      vm.proc_known = t.proc->ok();
      if (t.proc->ok()) vm.proc = process_state(**t.proc);
      vm.fresh_as_of = ++direct_updates;
      if (!t.already) {
        vm.booted = vm.manifest;
        vm.booted_files_generation = vm.files_generation;
      }
      break;
    case K::kStopAsked:  // a user's stop: restarts begin afresh
      vm.started = false;
      reset_restart(vm);
      break;
    case K::kShutdownAsked:  // a user's shutdown, or the guest powering off
      vm.started = false;
      break;
    case K::kRemoving:
      vm.removing = true;
      reset_restart(vm);
      break;
    case K::kAdopted:  // re-adopted after a restart of the daemon: it runs, booted before
      vm.boot_progress = "running";
      break;
    case K::kCreated:  // its workdir is complete
      vm.creating = false;
      break;
    case K::kGuestReport:  // boot.progress, boot.error, shutdown.progress
      if (t.event == "boot.progress") vm.boot_progress = t.payload;
      else if (t.event == "boot.error") vm.boot_error = t.payload;
      else if (t.event == "shutdown.progress") vm.shutdown_progress = t.payload;
      return;  // the status has not changed
  }
  note_change(id, vm);
}

}  // namespace dstackvmm
