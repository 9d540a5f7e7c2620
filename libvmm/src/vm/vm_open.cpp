// SPDX-License-Identifier: Apache-2.0
// VmManager::open, step by step: set up from the options (host facts, CID registry, serial
// watch), read the launcher's table, take each folder under run_path (load it, finish its
// removal, or discard a half-made VM), claim the CIDs, re-adopt or start what should run,
// and start the watch, auto-restart and log-rotation threads.
#include <dstackvmm/vm_manager.hpp>

#include <unordered_map>

#include <malloc.h>
#include <unistd.h>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_id.hpp>

#include "base/fs_util.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

using internal::VmPaths;

namespace {
// Start-up and each auto-restart tick read the launcher's whole table (megabytes of JSON at a
// thousand VMs that ran): the heap would keep what they freed, pinned by the few blocks that
// stay, so it is handed back to the system after them.
void hand_back_freed_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}
}  // namespace

struct VmManager::Impl::Opening {
  Impl& im;
  std::vector<std::string> unfinished;  // removals a crash interrupted
  std::set<std::string> launcher_runs;  // the VMs whose process runs, as the launcher said
  std::unordered_map<std::string, const ProcessInfo*> loader_table;  // see index_loader_table
  bool loader_table_read = false;

  // What the options and the host decide once: launcher, roots, CID registry, accel,
  // platform, guest channel, QEMU, pools; run_path made.
  Status configure() {
    if (im.opt.log_sink) set_log_sink(im.opt.log_sink);
    Config& c = im.opt.config;
    if (auto s = resolve_home_defaults(c); !s.ok()) return s;
    im.launcher = im.opt.launcher ? im.opt.launcher : make_direct_launcher();
    im.roots = {im.opt.proc_root, im.opt.dev_root};
    if (!im.opt.cid_registry.empty()) {
      std::error_code canon_ec;
      auto owner = std::filesystem::weakly_canonical(c.run_path, canon_ec);
      im.cid_registry.emplace(im.opt.cid_registry, (canon_ec ? std::filesystem::path(c.run_path) : owner).string(),
                              c.cvm.cid_start, c.cvm.cid_pool_size, im.opt.proc_root);
    }
    im.serial_watch = std::make_unique<internal::SerialWatch>(
        [impl = &im](const std::string& id, internal::GuestPanic panic) { impl->on_guest_panic(id, std::move(panic)); });
    im.journal = internal::ActivityJournal(std::max<uint64_t>(1, im.now_ms()), im.opt.activity_capacity);
    im.accel = internal::resolve_accel(c.cvm.accel, im.roots);
    im.platform = internal::resolve_platform(c.cvm.platform, im.roots);
    im.channel = internal::resolve_channel(c.cvm.guest_channel, im.roots);
    im.qemu = internal::find_qemu(c.cvm.qemu_path);
    im.cids = CidPool(c.cvm.cid_start, c.cvm.cid_pool_size);
    im.disks = std::make_unique<internal::DiskTemplates>(im.opt.qemu_img, std::filesystem::path(c.run_path) / ".disk-templates");
    if (auto s = check_state_folders_resolved(c.run_path, c.image.path); !s.ok()) return s;
    return internal::make_dirs(c.run_path);
  }

  // The folders to look at: every one under run_path, or the one VM's alone.
  Result<std::vector<std::filesystem::directory_entry>> folders() const {
    const Config& c = im.opt.config;
    std::error_code ec;
    std::vector<std::filesystem::directory_entry> entries;
    if (!im.opt.only_vm.empty()) {
      // One VM's folder and nothing else: whatever else lies under run_path is not ours here.
      if (auto s = validate_vm_id(im.opt.only_vm); !s.ok()) return s.error();
      std::filesystem::directory_entry one(std::filesystem::path(c.run_path) / im.opt.only_vm, ec);
      if (one.exists(ec)) entries.push_back(one);
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(c.run_path, ec)) entries.push_back(entry);
    }
    return entries;
  }

  // One folder: a VM loaded, a removal to finish, a half-made VM discarded, or left alone.
  // True when a VM was added. Files are read without mu: the listings of a daemon already
  // serving (read_later_above) wait only for each VM's insertion.
  bool take(const std::filesystem::directory_entry& entry) {
    std::error_code ec;
    std::string id = entry.path().filename().string();
    if (!entry.is_directory(ec) || !validate_vm_id(id).ok()) return false;
    VmPaths p(im.opt.config.run_path, id);
    bool removing = std::filesystem::exists(p.removing_marker(), ec);
    bool half_created = std::filesystem::exists(p.creating_marker(), ec);
    if (!removing && !half_created && !std::filesystem::exists(p.manifest(), ec)) {
      // Not made by us, or a create killed between its mkdir and its marker (then it is
      // empty, and rmdir, which removes only an empty folder, loses nothing). Anything
      // else is not ours to delete.
      if (!im.opt.recover || ::rmdir(p.dir.c_str()) != 0)
        log_message(LogLevel::kWarn, "vmm", "leaving " + p.dir.string() + " alone: it has no vm-manifest.json");
      return false;
    }
    if ((removing || half_created) && !im.opt.recover) {
      // Finishing a removal or discarding a half-made VM stops processes and deletes files:
      // a manager that must start nothing (a dry run) does neither, and leaves the VM out.
      log_message(LogLevel::kWarn, "vmm", "leaving " + p.dir.string() + " alone: it is being " +
                                              (removing ? "removed" : "created"));
      return false;
    }
    if (half_created && !removing && (launcher_runs.count(id) || internal::orphan_qemu_pid(p))) {
      // A create killed between its QEMU's start and the folder's fsyncs: every file was
      // written before the launch, so the create is finished, and its guest adopted, not
      // undone. (After a power cut no QEMU runs, and the folder is discarded below.)
      log_message(LogLevel::kInfo, "vmm", "finishing the create of " + id + ": its QEMU runs");
      if (auto s = internal::finish_new_workdir(p); !s.ok())
        log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + s.error().message);
      half_created = false;
    }
    if (removing && !half_created) {
      // Finished once open, like any removal: its process stopped (through the launcher
      // that runs it), then the folder deleted.
      if (auto folder = im.read_folder(id); folder.ok()) {
        std::lock_guard lock(im.mu);
        if (auto vm = im.add_vm(id, std::move(*folder)); vm.ok()) {
          im.transition(id, **vm, {.kind = VmTransition::Kind::kRemoving});
          announce(id, **vm);
          unfinished.push_back(id);
          return true;
        }
      }
    }
    if (removing || half_created) {
      // Never leave a half-made or half-removed VM behind, nor delete a folder under a QEMU.
      log_message(LogLevel::kInfo, "vmm", std::string(removing ? "finishing removal of " : "discarding half-created ") + id);
      if (auto pid = internal::orphan_qemu_pid(p); pid && !internal::kill_and_wait(*pid, im.opt.stop_timeout)) {
        log_message(LogLevel::kError, "vmm", "leaving " + p.dir.string() + ": its QEMU (pid " + std::to_string(*pid) + ") did not exit");
        return false;
      }
      (void)internal::remove_tree(p.dir);
      return false;
    }
    auto folder = im.read_folder(id);
    std::unique_lock lock(im.mu);
    auto vm = folder.ok() ? im.add_vm(id, std::move(*folder)) : Result<std::shared_ptr<Vm>>(folder.error());
    if (!vm.ok()) {
      lock.unlock();
      log_message(LogLevel::kError, "vmm", "skipping VM " + id + ": " + vm.error().message);
      return false;
    }
    show_loaded_process(id, **vm);
    announce(id, **vm);
    return true;
  }

  // The launcher's table the background loader read before the folders, by id (pointing into
  // it: null once it moves on): take() shows each VM it reads as that table has it, instead
  // of as unknown, until learn_processes() applies the table.
  void index_loader_table(const Result<ProcessChanges>* table) {
    loader_table.clear();
    loader_table_read = table && table->ok();
    if (loader_table_read)
      for (const auto& p : (*table)->changed) loader_table[p.spec.id] = &p;
  }
  void show_loaded_process(const std::string& id, Vm& vm) {  // caller holds mu
    if (!im.loading || !loader_table_read) return;
    auto it = loader_table.find(id);
    vm.proc = it == loader_table.end() ? std::nullopt : process_state(*it->second);
    vm.proc_from_loader = true;
  }

  // A VM read after open() returned is told to subscribers (who may have subscribed before)
  // as their snapshot of it; caller holds mu.
  void announce(const std::string& id, const Vm& vm) {
    if (im.loading) im.queue(im.snapshot_of(id, vm));
  }

  // The folders of VMs whose process runs, as the launcher's table says, moved to the front;
  // how many there are.
  size_t running_first(std::vector<std::filesystem::directory_entry>& entries, const Result<ProcessChanges>& table) {
    if (!table.ok()) return 0;
    for (const auto& p : table->changed)
      if (p.status == ProcessStatus::kRunning) launcher_runs.insert(p.spec.id);
    auto lead = std::stable_partition(entries.begin(), entries.end(),
                                      [&](const auto& e) { return launcher_runs.count(e.path().filename().string()) > 0; });
    return static_cast<size_t>(lead - entries.begin());
  }

  // The entries of `l` whose process runs, as a table recover() reads (not the whole one:
  // its generation is none to go on from).
  static Result<ProcessChanges> running_table(ProcessLauncher& l) {
    auto live = l.running();
    if (!live.ok()) return live.error();
    return ProcessChanges{0, false, std::move(*live), {}};
  }

  // The launcher's whole table, after running_table(): the CIDs of the other VM processes
  // remembered for the folders still to read.
  Result<ProcessChanges> whole_table() {
    auto table = im.launcher->changes(0);
    im.remember_launcher_cids(table);
    return table;
  }

  // Takes the folders in [begin, end), then claims the CIDs of the VMs they held.
  // Stops early when the manager goes. Subscribers hear of each VM as it is read (announce).
  void take_all(std::vector<std::filesystem::directory_entry>::const_iterator begin,
                std::vector<std::filesystem::directory_entry>::const_iterator end) {
    std::vector<std::string> loaded;
    for (auto it = begin; it != end && !im.load_cancel; ++it) {
      if (take(*it)) loaded.push_back(it->path().filename().string());
      im.flush();
    }
    if (!loaded.empty()) im.claim_cids(loaded);
    im.flush();
  }

  // The VMs loaded so far, whose process runs, re-adopted (named in `adopted`).
  void adopt_running(const Result<ProcessChanges>& table, std::set<std::string>& adopted) {
    std::map<std::string, std::string> versions;
    for (auto& [id, vm] : im.vms) im.refresh_cache(id, *vm, &versions);
    im.recover(table, Impl::RecoverStep::kRunning, &adopted);
  }

  // What runs now: re-adopted and started (recover), or only learnt (a dry run). `adopted`:
  // re-adopted already by adopt_running().
  void learn_processes(Result<ProcessChanges> table, std::set<std::string>& adopted) {
    std::vector<std::pair<std::string, std::shared_ptr<Vm>>> rest;
    {
      std::lock_guard lock(im.mu);
      for (const auto& entry : im.vms)
        if (!adopted.count(entry.first)) rest.push_back(entry);
      im.launcher_cids.clear();
    }
    std::map<std::string, std::string> versions;  // many VMs share an image: load each once
    for (auto& [id, vm] : rest) im.refresh_cache(id, *vm, &versions);
    if (im.opt.recover) {
      im.recover(std::move(table), Impl::RecoverStep::kRest, &adopted);
    } else {
      Result<std::vector<ProcessInfo>> procs = entries_of(table);
      im.apply_processes(procs);
    }
    hand_back_freed_heap();
    std::lock_guard lock(im.mu);
    im.journal_on = true;  // (recover() turned it on already, once it knew what runs)
  }

  // The watch thread, the removals a crash interrupted, and the periodic ticks.
  void start_threads(VmManager* self) {
    im.watch_link->impl = &im;
    uint64_t generation;
    {
      std::lock_guard lock(im.mu);
      generation = im.table_generation;
    }
    im.watcher = std::thread(Impl::watch_processes, im.watch_link, im.launcher, generation);
    for (const auto& id : unfinished) {
      auto vm = im.find(id);
      if (vm.ok()) im.post_finish_remove(id, *vm);
    }
    const auto& ar = im.opt.config.cvm.auto_restart;
    if (ar.enabled && im.opt.auto_restart_thread) {
      auto interval = std::chrono::seconds(std::max<uint64_t>(1, ar.interval));
      im.restarter = std::thread([self, interval] {
        Impl& impl = *self->impl_;
        std::unique_lock lock(impl.restarter_mu);
        while (!impl.stopping) {  // first tick at once, as upstream
          lock.unlock();
          self->auto_restart_tick();
          hand_back_freed_heap();
          lock.lock();
          impl.restarter_cv.wait_for(lock, interval, [&] { return impl.stopping; });
        }
      });
    }
    const auto& rotation = im.opt.config.cvm.log;
    if (rotation.max_bytes > 0 && im.opt.log_rotation_thread) {
      auto interval = std::chrono::seconds(std::max<uint64_t>(1, rotation.check_interval_secs));
      im.rotator = std::thread([self, interval] {
        Impl& impl = *self->impl_;
        std::unique_lock lock(impl.restarter_mu);
        while (!impl.restarter_cv.wait_for(lock, interval, [&] { return impl.stopping; })) {
          lock.unlock();
          self->rotate_logs_tick();
          lock.lock();
        }
      });
    }
  }
};

Result<std::unique_ptr<VmManager>> VmManager::open(ManagerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  Impl::Opening o{*impl};
  if (auto s = o.configure(); !s.ok()) return s.error();
  auto folders = o.folders();
  if (!folders.ok()) return folders.error();
  // The launcher's table first: the CIDs its VM processes run with are the VMs' CIDs, and
  // recover() goes on from this very read. On a host with more folders than are read before
  // serving, only the entries that run are asked for now (the whole table is a host's history:
  // megabytes at a thousand VMs that ran) and the rest with the rest of the folders.
  bool partial = impl->opt.recover && folders->size() > impl->opt.read_later_above;
  auto table = partial ? Impl::Opening::running_table(*impl->launcher) : impl->launcher->changes(0);
  impl->remember_launcher_cids(table);
  std::unique_ptr<VmManager> vmm(new VmManager(std::move(impl)));
  // Guests that run first: their folders are read, their CIDs claimed and they are re-adopted
  // before any other folder is read, so a host's thousands of stopped VMs do not stand
  // between a restarted daemon and the guests it supervises.
  size_t lead = o.im.opt.recover ? o.running_first(*folders, table) : 0;
  std::set<std::string> adopted;
  if (lead) {
    o.take_all(folders->begin(), folders->begin() + static_cast<std::ptrdiff_t>(lead));
    o.adopt_running(table, adopted);
  }
  size_t left = folders->size() - lead;
  if (left <= o.im.opt.read_later_above) {
    if (partial) table = o.whole_table();
    o.take_all(folders->begin() + static_cast<std::ptrdiff_t>(lead), folders->end());
    o.learn_processes(std::move(table), adopted);
    o.start_threads(vmm.get());
    return vmm;
  }
  // The rest after open() returns: what runs is known and re-adopted already; what waits on
  // the rest (changes, VMs not read yet) waits on `loading`.
  log_message(LogLevel::kInfo, "vmm", "reading the other " + std::to_string(left) + " entries of " + o.im.opt.config.run_path + " in the background");
  Impl& im = o.im;
  {
    std::lock_guard lock(im.mu);
    im.loading = true;
  }
  im.loader = std::thread([o = std::move(o), folders = std::move(*folders), lead, table = std::move(table), partial,
                             adopted = std::move(adopted), self = vmm.get()]() mutable {
    auto began = std::chrono::steady_clock::now();
    if (partial) table = o.whole_table();
    o.index_loader_table(&table);
    o.take_all(folders.begin() + static_cast<std::ptrdiff_t>(lead), folders.end());
    o.index_loader_table(nullptr);  // the table moves on below
    bool whole = !o.im.load_cancel;  // else the manager goes: nothing more is started
    if (whole) {
      o.learn_processes(std::move(table), adopted);
      o.start_threads(self);
    }
    {
      std::lock_guard lock(o.im.mu);
      o.im.loading = false;
    }
    o.im.loaded_cv.notify_all();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count();
    if (whole) log_message(LogLevel::kInfo, "vmm", "every VM folder read (" + std::to_string(ms) + " ms in the background)");
  });
  return vmm;
}

}  // namespace dstackvmm
