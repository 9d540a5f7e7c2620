// SPDX-License-Identifier: Apache-2.0
// VmManager: coming back after a crash or restart (re-adoption, reload).
#include <dstackvmm/vm_manager.hpp>

#include <set>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_id.hpp>

#include "vm/app_compose.hpp"
#include "base/fs_util.hpp"
#include "base/json_limits.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

void VmManager::Impl::refresh_cache(const std::string& id, Vm& vm, std::map<std::string, std::string>* versions) {
  VmPaths p = paths(id);
  std::string image;
  {
    std::lock_guard lock(mu);
    image = vm.manifest.image;
  }
  std::string version;
  if (auto known = versions ? versions->find(image) : std::map<std::string, std::string>::iterator{};
      versions && known != versions->end()) {
    version = known->second;
  } else {
    auto img = load_image(opt.config.image.path, image);
    version = img.ok() ? img->version : "";
    if (versions) (*versions)[image] = version;
  }
  bool gateway = internal::compose_enables_gateway(internal::read_file(p.compose()).value_or(""));
  auto instance = internal::read_instance_id(p);
  std::lock_guard lock(mu);
  vm.image_version = version;
  vm.gateway_enabled = gateway;
  vm.instance_id = instance;
  touch(vm);
}

namespace internal {
bool is_vm_process(const std::string& note) {
  nlohmann::json j = parse_json(note, {64 * 1024, 8});
  if (!j.is_object()) return true;
  auto live_for = j.find("live_for");
  if (live_for != j.end() && !live_for->is_null()) return false;
  auto kind = j.find("kind");
  return kind == j.end() || !kind->is_string() || *kind == "" || *kind == "cvm";
}
}  // namespace internal

// Re-adopted: same CID, ports and QMP socket (the process never stopped). Whatever is
// missing is reported, never "fixed" by killing a guest that runs. Caller holds vm.op.
void VmManager::Impl::adopt(const std::string& id, Vm& vm) {
  std::vector<std::string> problems;
  VmPaths p = paths(id);
  std::error_code ec;
  if (opt.config.cvm.qmp_socket && !std::filesystem::exists(p.qmp_socket(), ec)) problems.push_back("QMP socket is gone");
  if (!internal::read_file(p.pid_file()).ok()) problems.push_back("pid file is unreadable");
  follow_serial(id);  // panics from now on (what it printed before is not read again)
  std::lock_guard lock(mu);
  transition(id, vm, {.kind = VmTransition::Kind::kAdopted});
  VmActivity a;
  a.vm_id = id;
  a.kind = "adopted";
  a.status = vm_status_name(vm.status);
  a.detail = problems.empty() ? "running since before this daemon started" : "degraded";
  record(std::move(a));
  if (!problems.empty()) {
    std::string reason;
    for (const auto& r : problems) reason += (reason.empty() ? "" : "; ") + r;
    vm.degraded = reason;
    touch(vm);
    log_message(LogLevel::kWarn, "vmm", "VM " + id + " re-adopted degraded: " + reason);
  }
}

// The VMs whose process runs, from the launcher's table; a VM process whose VM is gone (a
// removal interrupted by a crash) is stopped and forgotten. Its workdir, if any is left, is
// kept, as upstream does.
std::set<std::string> VmManager::Impl::running_vms(const std::vector<ProcessInfo>& procs, const std::set<std::string>& known) {
  std::set<std::string> live;
  for (const auto& p : procs) {
    bool is_vm = internal::is_vm_process(p.spec.note);
    if (!known.count(p.spec.id) && is_vm) {
      log_message(LogLevel::kInfo, "vmm", "cleaning up process " + p.spec.id + " that belongs to no VM");
      (void)launcher->stop(p.spec.id);
      (void)wait_stopped(p.spec.id, opt.stop_timeout);
      (void)launcher->remove(p.spec.id);
      continue;
    }
    if (p.status == ProcessStatus::kRunning) live.insert(p.spec.id);
  }
  return live;
}

void VmManager::Impl::recover(std::optional<Result<ProcessChanges>> prefetched, RecoverStep step,
                              std::set<std::string>* adopted) {
  std::vector<std::pair<std::string, std::shared_ptr<Vm>>> all;
  std::set<std::string> known;  // every VM: a process of none of them belongs to no VM
  {
    std::lock_guard lock(mu);
    for (const auto& entry : vms) {
      known.insert(entry.first);
      if (step != RecoverStep::kRest || !adopted || !adopted->count(entry.first)) all.push_back(entry);
    }
  }
  // One look at the process table, not one per VM; it also fills the status cache. When the
  // launcher cannot answer, nothing is started or stopped on a guess: the watch thread
  // fills the cache once it answers, and auto-restart acts from then on.
  // Asked as changes since 0, which is the whole table plus the generation it is at: the
  // watch thread goes on from that generation instead of fetching the whole table again.
  auto table = prefetched ? std::move(*prefetched) : launcher->changes(0);
  Result<std::vector<ProcessInfo>> procs = entries_of(table);
  if (step == RecoverStep::kRest) {
    // What the VMs open() loaded after re-adopting the running ones were doing before this
    // manager is not news: the journal is off while they learn it.
    std::lock_guard lock(mu);
    journal_on = false;
  }
  apply_processes(procs);
  {
    std::lock_guard lock(mu);
    journal_on = true;  // from here on, what changes is news
    if (table.ok()) table_generation = table->generation;
  }
  if (!procs.ok()) {
    if (step != RecoverStep::kRunning) log_message(LogLevel::kError, "vmm", "cannot re-adopt VMs now: " + procs.error().message);
    return;
  }
  std::set<std::string> live;
  if (step == RecoverStep::kRunning) {
    for (const auto& p : *procs)
      if (p.status == ProcessStatus::kRunning && known.count(p.spec.id)) live.insert(p.spec.id);
  } else {
    live = running_vms(*procs, known);
  }
  for (auto& [id, vm] : all) {
    std::lock_guard op(vm->op);
    {
      std::lock_guard lock(mu);
      if (vm->removing) continue;
    }
    if (live.count(id)) {
      adopt(id, *vm);
      if (adopted) adopted->insert(id);
      continue;
    }
    if (step == RecoverStep::kRunning) continue;
    bool started;
    {
      std::lock_guard lock(mu);
      started = vm->started;
    }
    if (!started) continue;
    log_message(LogLevel::kInfo, "vmm", "VM " + id + " should run but does not; starting it");
    if (auto s = launch(id, *vm); !s.ok()) log_message(LogLevel::kError, "vmm", "VM " + id + ": " + s.error().message);
  }
}

// The launcher's VM entries' CIDs, by id: what load_vm() prefers for a VM new to us.
void VmManager::Impl::remember_launcher_cids(const Result<ProcessChanges>& table) {
  std::lock_guard lock(mu);
  if (!table.ok()) return;
  for (const auto& p : table->changed)
    if (p.spec.cid && internal::is_vm_process(p.spec.note)) launcher_cids[p.spec.id] = *p.spec.cid;
}

// reload()'s look at run_path: known VMs re-read, new ones loaded (`loaded`), every VM folder
// named in `on_disk`; a folder that cannot be listed leaves `ec` set.
Status VmManager::Impl::rescan(std::set<std::string>& on_disk, std::vector<std::string>& loaded, ReloadCounts& counts,
                               std::error_code& ec) {
  for (const auto& entry : std::filesystem::directory_iterator(opt.config.run_path, ec)) {
    std::string id = entry.path().filename().string();
    VmPaths p(opt.config.run_path, id);
    if (!validate_vm_id(id).ok() || !std::filesystem::exists(p.manifest(), ec)) continue;
    on_disk.insert(id);
    // A create or removal in progress is not a VM to load (nor to drop).
    if (std::filesystem::exists(p.creating_marker(), ec) || std::filesystem::exists(p.removing_marker(), ec)) continue;
    auto manifest = internal::read_manifest(p);
    if (!manifest.ok()) continue;
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it != vms.end()) {
      if (!it->second->removing) {
        it->second->manifest = *manifest;
        listing_moved();
        forget_files(*it->second);  // the files may have been edited too: read them again
        ++counts.updated;
      }
      continue;
    }
    // The same loader as start-up: the VM keeps its CID and agent port.
    auto vm = load_vm(id);
    if (!vm.ok()) return vm.error();
    (*vm)->proc_known = false;  // until the recover() below has looked
    ++counts.loaded;
    loaded.push_back(id);
  }
  return {};
}

Result<VmManager::ReloadCounts> VmManager::reload() {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  std::vector<std::string> loaded;  // new VMs, whose CIDs the host-wide registry is asked for at once
  ReloadCounts counts;
  const Config& c = impl_->opt.config;
  std::set<std::string> on_disk;
  auto table = impl_->launcher->changes(0);  // CIDs of what runs, for VMs new to us (load_vm)
  impl_->remember_launcher_cids(table);
  std::error_code ec;
  if (auto s = impl_->rescan(on_disk, loaded, counts, ec); !s.ok()) return s.error();
  impl_->claim_cids(loaded);
  std::vector<std::pair<std::string, std::shared_ptr<Vm>>> all;
  {
    std::lock_guard lock(impl_->mu);
    all.assign(impl_->vms.begin(), impl_->vms.end());
  }
  std::map<std::string, std::string> versions;
  for (auto& [id, vm] : all) impl_->refresh_cache(id, *vm, &versions);
  {
    std::lock_guard lock(impl_->mu);
    impl_->launcher_cids.clear();
  }
  impl_->recover(std::move(table));  // as at start-up: re-adopt, start what should run, drop orphans
  if (ec) return make_error(ErrorCode::kIo, "cannot read " + c.run_path + ": " + ec.message());
  std::vector<std::string> vanished;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [id, vm] : impl_->vms)
      if (!on_disk.count(id) && !vm->removing && !vm->creating) vanished.push_back(id);
  }
  for (const auto& id : vanished) {
    (void)impl_->launcher->stop(id);
    impl_->release(id);
    ++counts.removed;
  }
  return counts;
}

}  // namespace dstackvmm
