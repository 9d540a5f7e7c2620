// SPDX-License-Identifier: Apache-2.0
// VmManager: guest kernel panics, as the serial console shows them. A panicking guest reboots
// inside its QEMU, so its VM stays "running" while it boot-loops; these make the loop visible:
// a journal entry ("panicked"), an event in the VM's info, a warning in the log and, in the
// launch record of that QEMU, the panic with the console lines around it.
#include <dstackvmm/log.hpp>

#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

namespace {
constexpr size_t kMessageMax = 200;  // in events and the journal; the record keeps the line
// A real panic is followed by a reboot, seconds long. A guest printing the marker line in a
// loop must not make the host write launch.json, the journal and the log at its pace: at
// most one panic a second is taken, the rest of the burst is dropped.
constexpr uint64_t kPanicIntervalMs = 1000;
}  // namespace

void VmManager::Impl::follow_serial(const std::string& id) {
  if (!serial_watch) return;
  auto s = serial_watch->follow(id, paths(id).serial_log());
  if (s.ok()) return;
  std::lock_guard lock(mu);
  if (serial_watch_failed) return;
  serial_watch_failed = true;
  log_message(LogLevel::kWarn, "vmm", "guest kernel panics will not be reported: " + s.error().message);
}

void VmManager::Impl::on_guest_panic(const std::string& id, internal::GuestPanic panic) {
  std::string message = panic.message.substr(0, kMessageMax);
  if (message.empty()) message = "(no message)";
  LaunchPanic p{now_ms(), panic.message, std::move(panic.serial_tail)};
  {
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it == vms.end() || it->second->removing) return;
    Vm& vm = *it->second;
    if (vm.panic_reported_ms && p.time_ms < vm.panic_reported_ms + kPanicIntervalMs) {
      ++guest_panics_dropped;
      return;
    }
    vm.panic_reported_ms = p.time_ms;
    add_event(vm, {"vmm.guest_panic", "kernel panic: " + message, p.time_ms});
    VmActivity a;
    a.vm_id = id;
    a.kind = "panicked";
    a.status = vm_status_name(vm.status);
    a.detail = message;
    record(std::move(a));
  }
  log_message(LogLevel::kWarn, "vmm", "VM " + id + ": guest kernel panic: " + message);
  record_panic(id, p);
}

}  // namespace dstackvmm
