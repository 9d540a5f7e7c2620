// SPDX-License-Identifier: Apache-2.0
// VmManager: opening a run_path, creating and updating VMs, and describing them.
#include <dstackvmm/vm_manager.hpp>

#include <malloc.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <set>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_id.hpp>
#include <dstackvmm/vm_logs.hpp>

#include "tee/compose_facts.hpp"
#include "tee/verity_volumes.hpp"
#include "vm/app_compose.hpp"
#include "base/fs_util.hpp"
#include "base/text_util.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

namespace {

Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

Status check_limits(const CvmConfig& c, uint32_t vcpu, uint32_t memory, uint32_t disk) {
  if (vcpu == 0) return invalid("vcpu must be greater than zero");
  if (memory == 0) return invalid("memory must be greater than zero");
  if (disk == 0) return invalid("disk_size must be greater than zero");
  if (vcpu > c.max_allocable_vcpu)
    return invalid("vcpu " + std::to_string(vcpu) + " exceeds the limit of " + std::to_string(c.max_allocable_vcpu) +
                   " per VM (cvm.max_allocable_vcpu)");
  if (memory > c.max_allocable_memory_in_mb)
    return invalid("memory " + std::to_string(memory) + " MB exceeds the limit of " +
                   std::to_string(c.max_allocable_memory_in_mb) + " MB per VM (cvm.max_allocable_memory_in_mb)");
  if (disk > c.max_disk_size)
    return invalid("disk_size " + std::to_string(disk) + " GB exceeds the limit of " + std::to_string(c.max_disk_size) +
                   " GB per VM (cvm.max_disk_size)");
  return {};
}

// Upstream cannot start images before 0.5.0 (no sys-config for them): refused when the VM is
// made or moved to one, not only at its first start.
Status check_image_can_start(const Image& image) {
  auto version = parse_image_version(image.version);
  if (version && *version >= std::array<uint16_t, 3>{0, 5, 0}) return {};
  return make_error(ErrorCode::kFailedPrecondition,
                    "Unsupported image version '" + image.version + "' of image " + image.name + " (need >= 0.5.0)");
}

// An encrypted env is ephemeral X25519 key (32) + nonce (12) + AES-GCM ciphertext and tag (16
// or more): anything shorter cannot be one, and a guest would boot without its environment.
Status check_encrypted_env(const std::string& env) {
  if (env.empty() || env.size() >= 60) return {};
  return invalid("encrypted_env is " + std::to_string(env.size()) +
                 " bytes, not an encrypted env (X25519 key, nonce and AES-GCM ciphertext: at least 60 bytes); "
                 "encrypt it with vmmctl deploy --env-file, or leave it out");
}

// Port mappings ride on a user-mode NIC (QEMU hostfwd): a VM with bridge NICs only would get
// none of them.
Status check_ports_reachable(const std::vector<PortMapping>& ports, const std::vector<NetworkSpec>& networks) {
  if (ports.empty() || networks.empty()) return {};  // no NICs requested: the node default decides at start
  for (const auto& n : networks)
    if (n.mode == "user") return {};
  return invalid("port mappings need a user-mode network (QEMU forwards them on it), and this VM has only " +
                 networks.front().mode + " networking; add a user network or map no ports");
}

Status check_networks(const std::vector<NetworkSpec>& networks) {
  for (const auto& n : networks) {
    if (n.mode.empty()) return invalid(n.bridge.empty() ? "networking mode is required" : "networking mode is required when bridge is set");
    if (n.mode == "custom") return invalid("custom networking mode is manifest-only");
    if (n.mode != "user" && n.mode != "bridge") return invalid("unsupported networking mode '" + n.mode + "'");
    if (n.mode != "bridge" && !n.bridge.empty()) return invalid("bridge_name is only valid for bridge networking mode");
  }
  return {};
}

}  // namespace

// Everything about the NICs that can be known before a start: the requested list merged over
// the node default (what the manifest records, as upstream), and each bridge present now.
Result<std::vector<NetworkSpec>> VmManager::Impl::resolve_requested_networks(const std::vector<NetworkSpec>& requested) const {
  if (auto s = check_networks(requested); !s.ok()) return s.error();
  auto resolved = resolve_networks(opt.config.cvm.networking, requested);
  if (auto s = check_bridges(resolved); !s.ok()) return s.error();
  // None asked for: the manifest records none and the VM follows the node default.
  if (requested.empty()) return std::vector<NetworkSpec>{};
  return resolved;
}

Status VmManager::Impl::preflight(const VmManifest& m, const Image& image, const std::string& compose,
                                  const internal::ComposeFacts& facts) const {
  if (m.swtpm) {
    if (auto s = swtpm_program(); !s.ok()) return s.error();
    if (auto s = vm_launcher_program(); !s.ok()) return s.error();
  }
  auto material = internal::load_measurement_material(image.dir);
  if (!material.ok()) return material.error().context("Failed to load image");
  auto in = guest_inputs(m, image, *material, compose, facts);
  in.instance_info = internal::read_file(paths(m.id).instance_info()).value_or(R"({"app_id":")" + m.app_id + R"("})");
  in.cpu_count = std::max<uint32_t>(1, m.vcpu);
  in.num_nics = resolve_networks(opt.config.cvm.networking, m.networks).size();
  in.random = [](size_t n) { return std::string(n, '\0'); };  // nothing is kept: any seed will do
  auto files = internal::prepare_guest_files(in);
  if (!files.ok()) return files.error();
  return {};
}

Status VmManager::Impl::check_gpus_free(const VmManifest& m) const {
  if (!m.gpus) return {};
  std::map<std::string, GpuSelection> held;
  for (const auto& [id, other] : vms)
    if (other->manifest.gpus) held[id] = *other->manifest.gpus;
  return GpuInventory::check_free(m.id, *m.gpus, held);
}

VmManager::VmManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

VmManager::~VmManager() {
  impl_->serial_watch.reset();  // its callback enters the manager: it goes first
  {
    std::lock_guard lock(impl_->restarter_mu);
    impl_->stopping = true;
  }
  impl_->restarter_cv.notify_all();
  if (impl_->restarter.joinable()) impl_->restarter.join();
  if (impl_->rotator.joinable()) impl_->rotator.join();
  impl_->removals.drain();
  impl_->flush_registry_releases();
  {
    // The watch thread may be inside the launcher's wait_change() for seconds: it is told
    // to leave the manager alone and ends by itself.
    std::lock_guard lock(impl_->watch_link->mu);
    impl_->watch_link->impl = nullptr;
  }
  impl_->watch_link->cv.notify_all();
  if (impl_->watcher.joinable()) {
    if (impl_->launcher->cancel_waits()) impl_->watcher.join();
    else impl_->watcher.detach();
  }
  // VMs keep running: their processes belong to the launcher, not to this object.
}

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

Result<std::unique_ptr<VmManager>> VmManager::open(ManagerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  if (impl->opt.log_sink) set_log_sink(impl->opt.log_sink);
  Config& c = impl->opt.config;
  if (auto s = resolve_home_defaults(c); !s.ok()) return s.error();
  impl->launcher = impl->opt.launcher ? impl->opt.launcher : make_direct_launcher();
  impl->roots = {impl->opt.proc_root, impl->opt.dev_root};
  if (!impl->opt.cid_registry.empty()) {
    std::error_code canon_ec;
    auto owner = std::filesystem::weakly_canonical(c.run_path, canon_ec);
    impl->cid_registry.emplace(impl->opt.cid_registry, (canon_ec ? std::filesystem::path(c.run_path) : owner).string(),
                               c.cvm.cid_start, c.cvm.cid_pool_size, impl->opt.proc_root);
  }
  impl->serial_watch = std::make_unique<internal::SerialWatch>(
      [impl = impl.get()](const std::string& id, internal::GuestPanic panic) { impl->on_guest_panic(id, std::move(panic)); });
  impl->journal = internal::ActivityJournal(std::max<uint64_t>(1, impl->now_ms()), impl->opt.activity_capacity);
  impl->accel = internal::resolve_accel(c.cvm.accel, impl->roots);
  impl->platform = internal::resolve_platform(c.cvm.platform, impl->roots);
  impl->channel = internal::resolve_channel(c.cvm.guest_channel, impl->roots);
  impl->qemu = internal::find_qemu(c.cvm.qemu_path);
  impl->cids = CidPool(c.cvm.cid_start, c.cvm.cid_pool_size);
  impl->disks = std::make_unique<internal::DiskTemplates>(impl->opt.qemu_img, std::filesystem::path(c.run_path) / ".disk-templates");
  if (auto s = check_state_folders_resolved(c.run_path, c.image.path); !s.ok()) return s.error();
  if (auto s = internal::make_dirs(c.run_path); !s.ok()) return s.error();

  // The launcher's table first: the CIDs its VM processes run with are the VMs' CIDs, and
  // recover() goes on from this very read.
  auto table = impl->launcher->changes(0);
  if (table.ok())
    for (const auto& p : table->changed)
      if (p.spec.cid && internal::is_vm_process(p.spec.note)) impl->launcher_cids[p.spec.id] = *p.spec.cid;
  std::error_code ec;
  std::vector<std::string> unfinished;  // removals a crash interrupted
  std::vector<std::filesystem::directory_entry> entries;
  if (!impl->opt.only_vm.empty()) {
    // One VM's folder and nothing else: whatever else lies under run_path is not ours here.
    if (auto s = validate_vm_id(impl->opt.only_vm); !s.ok()) return s.error();
    std::filesystem::directory_entry one(std::filesystem::path(c.run_path) / impl->opt.only_vm, ec);
    if (one.exists(ec)) entries.push_back(one);
  } else {
    for (const auto& entry : std::filesystem::directory_iterator(c.run_path, ec)) entries.push_back(entry);
  }
  for (const auto& entry : entries) {
    std::string id = entry.path().filename().string();
    if (!entry.is_directory(ec) || !validate_vm_id(id).ok()) continue;
    VmPaths p(c.run_path, id);
    bool removing = std::filesystem::exists(p.removing_marker(), ec);
    bool half_created = std::filesystem::exists(p.creating_marker(), ec);
    if (!removing && !half_created && !std::filesystem::exists(p.manifest(), ec)) {
      // Not made by us, or a create killed between its mkdir and its marker (then it is
      // empty, and rmdir, which removes only an empty folder, loses nothing). Anything
      // else is not ours to delete.
      if (!impl->opt.recover || ::rmdir(p.dir.c_str()) != 0)
        log_message(LogLevel::kWarn, "vmm", "leaving " + p.dir.string() + " alone: it has no vm-manifest.json");
      continue;
    }
    if ((removing || half_created) && !impl->opt.recover) {
      // Finishing a removal or discarding a half-made VM stops processes and deletes files:
      // a manager that must start nothing (a dry run) does neither, and leaves the VM out.
      log_message(LogLevel::kWarn, "vmm", "leaving " + p.dir.string() + " alone: it is being " +
                                              (removing ? "removed" : "created"));
      continue;
    }
    if (removing && !half_created) {
      // Finished below like any removal: its process stopped (through the launcher that
      // runs it), then the folder deleted.
      if (auto vm = impl->load_vm(id); vm.ok()) {
        (*vm)->removing = true;
        unfinished.push_back(id);
        continue;
      }
    }
    if (removing || half_created) {
      // Never leave a half-made or half-removed VM behind, nor delete a folder under a QEMU.
      log_message(LogLevel::kInfo, "vmm", std::string(removing ? "finishing removal of " : "discarding half-created ") + id);
      if (auto pid = internal::orphan_qemu_pid(p); pid && !internal::kill_and_wait(*pid, impl->opt.stop_timeout)) {
        log_message(LogLevel::kError, "vmm", "leaving " + p.dir.string() + ": its QEMU (pid " + std::to_string(*pid) + ") did not exit");
        continue;
      }
      (void)internal::remove_tree(p.dir);
      continue;
    }
    auto vm = impl->load_vm(id);
    if (!vm.ok()) log_message(LogLevel::kError, "vmm", "skipping VM " + id + ": " + vm.error().message);
  }
  {
    std::vector<std::string> loaded;
    for (const auto& [id, vm] : impl->vms) loaded.push_back(id);
    impl->claim_cids(loaded);
  }
  std::unique_ptr<VmManager> vmm(new VmManager(std::move(impl)));
  std::map<std::string, std::string> versions;  // many VMs share an image: load each once
  for (auto& [id, vm] : vmm->impl_->vms) vmm->impl_->refresh_cache(id, *vm, &versions);
  vmm->impl_->launcher_cids.clear();
  if (vmm->impl_->opt.recover) {
    vmm->impl_->recover(std::move(table));
  } else {
    Result<std::vector<ProcessInfo>> procs = table.ok() ? Result<std::vector<ProcessInfo>>(std::move(table->changed)) : table.error();
    vmm->impl_->apply_processes(procs);
  }
  hand_back_freed_heap();
  {
    std::lock_guard lock(vmm->impl_->mu);
    vmm->impl_->journal_on = true;  // (recover() turned it on already, once it knew what runs)
  }
  vmm->impl_->watch_link->impl = vmm->impl_.get();
  uint64_t generation;
  {
    std::lock_guard lock(vmm->impl_->mu);
    generation = vmm->impl_->table_generation;
  }
  vmm->impl_->watcher = std::thread(Impl::watch_processes, vmm->impl_->watch_link, vmm->impl_->launcher, generation);
  for (const auto& id : unfinished) {
    auto vm = vmm->impl_->find(id);
    if (vm.ok()) vmm->impl_->removals.post([impl = vmm->impl_.get(), id, v = *vm] { impl->finish_remove(id, v); });
  }
  const auto& ar = vmm->impl_->opt.config.cvm.auto_restart;
  if (ar.enabled && vmm->impl_->opt.auto_restart_thread) {
    VmManager* self = vmm.get();
    auto interval = std::chrono::seconds(std::max<uint64_t>(1, ar.interval));
    vmm->impl_->restarter = std::thread([self, interval] {
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
  const auto& rotation = vmm->impl_->opt.config.cvm.log;
  if (rotation.max_bytes > 0 && vmm->impl_->opt.log_rotation_thread) {
    VmManager* self = vmm.get();
    auto interval = std::chrono::seconds(std::max<uint64_t>(1, rotation.check_interval_secs));
    vmm->impl_->rotator = std::thread([self, interval] {
      Impl& impl = *self->impl_;
      std::unique_lock lock(impl.restarter_mu);
      while (!impl.restarter_cv.wait_for(lock, interval, [&] { return impl.stopping; })) {
        lock.unlock();
        self->rotate_logs_tick();
        lock.lock();
      }
    });
  }
  return vmm;
}

Result<uint32_t> VmManager::Impl::allocate_cid(const std::string& vm) {
  if (!cid_registry) {
    std::lock_guard lock(mu);
    return cids.allocate();
  }
  // The registry is asked without mu (its lock may be another VMM's for a while); what this
  // manager holds is read before and checked again after, for a create of ours in between.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::set<uint32_t> used;
    {
      std::lock_guard lock(mu);
      used = cids.in_use_set();
    }
    auto cid = cid_registry->reserve(vm, std::nullopt, [&](uint32_t c) { return used.count(c) != 0; });
    if (!cid.ok()) return cid.error();
    std::lock_guard lock(mu);
    if (cids.occupy(*cid).ok()) return *cid;
  }
  return make_error(ErrorCode::kResourceExhausted, "no CID could be taken: this VMM's creates kept taking them first; try again");
}

void VmManager::Impl::claim_cids(const std::vector<std::string>& ids) {
  if (!cid_registry || ids.empty()) return;
  std::vector<std::pair<std::string, uint32_t>> wanted;
  {
    std::lock_guard lock(mu);
    for (const auto& id : ids)
      if (auto it = vms.find(id); it != vms.end()) wanted.emplace_back(id, it->second->cid);
  }
  // Another VMM of this host may hold one meanwhile: the VM keeps its CID (a running QEMU has
  // it), and its next start is refused until the conflict is gone.
  auto refused = cid_registry->reserve_all(wanted);
  std::lock_guard lock(mu);
  for (const auto& [id, error] : refused) {
    log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + error.message);
    if (auto it = vms.find(id); it != vms.end()) it->second->degraded = error.message;
  }
}

Result<std::shared_ptr<Vm>> VmManager::Impl::load_vm(const std::string& id) {
  VmPaths p = paths(id);
  auto manifest = internal::read_manifest(p);
  if (!manifest.ok()) return manifest.error();
  internal::migrate_launch_records(p);
  auto vm = std::make_shared<Vm>();
  vm->manifest = *manifest;
  vm->started = internal::read_state(p);
  // The CID and agent port the VM had (a running QEMU was started with them) when still free:
  // the launcher's entry knows the CID a QEMU runs with even when an upstream VMM started it
  // (its VMs have no vm-runtime.json).
  auto runtime = internal::read_runtime(p);
  auto listed = launcher_cids.find(id);
  // Outside this VMM's pool (another VMM's [cvm] cid range) it is still the QEMU's CID, as
  // upstream keeps it; no allocation here can hand it out.
  auto taken = listed == launcher_cids.end() || !listed->second ? Status(make_error(ErrorCode::kNotFound, ""))
                                                                 : cids.occupy(listed->second);
  if (listed != launcher_cids.end() && listed->second && (taken.ok() || taken.error().code == ErrorCode::kInvalidArgument)) {
    vm->cid = listed->second;  // the host-wide registry is asked for it by claim_cids()
    if (!runtime || runtime->cid != vm->cid)
      (void)internal::write_runtime(p, {vm->cid, runtime ? runtime->agent_port : uint16_t{0}});
  } else if (runtime && cids.occupy(runtime->cid).ok()) {
    vm->cid = runtime->cid;
  } else {
    // From this manager's pool only (mu is held here): the host-wide registry is asked for it
    // with the others by claim_cids(), which says when another VMM holds it.
    auto cid = cids.allocate();
    if (!cid.ok()) return cid.error();
    vm->cid = *cid;
  }
  if (runtime && runtime->agent_port && agent_ports.insert(runtime->agent_port).second) vm->agent_port = runtime->agent_port;
  if (auto s = ports.reserve(id, manifest->port_map); !s.ok())
    log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + s.error().message);
  vms[id] = vm;
  return vm;
}

Result<std::string> VmManager::create(VmConfiguration cfg) {
  const Config& c = impl_->opt.config;
  if (auto s = internal::validate_vm_name(cfg.name); !s.ok()) return s.error();
  auto facts = internal::read_compose(cfg.compose_file);
  if (!facts.ok()) return facts.error();
  if (auto s = validate_image_name(cfg.image); !s.ok()) return s.error();
  auto image = load_image(c.image.path, cfg.image);
  if (!image.ok()) return image.error().context("Failed to load image");
  if (auto s = check_image_can_start(*image); !s.ok()) return s.error();
  if (auto s = check_limits(c.cvm, cfg.vcpu, cfg.memory, cfg.disk_size); !s.ok()) return s.error();
  auto networks = impl_->resolve_requested_networks(cfg.networks);
  if (!networks.ok()) return networks.error();
  if (auto s = validate_port_mappings(c.cvm.port_mapping, cfg.ports); !s.ok()) return s.error();
  if (auto s = check_ports_reachable(cfg.ports, *networks); !s.ok()) return s.error();
  if (auto s = check_encrypted_env(cfg.encrypted_env); !s.ok()) return s.error();
  if (cfg.simulated_tee) {
    static const std::set<std::string> kVariants{"dstack-tdx", "dstack-gcp-tdx", "dstack-nitro-enclave", "dstack-amd-sev-snp",
                                                 "dstack-aws-nitro-tpm"};
    if (!kVariants.count(*cfg.simulated_tee))
      return invalid("unsupported TEE variant: " + *cfg.simulated_tee +
                     " (dstack-tdx, dstack-gcp-tdx, dstack-nitro-enclave, dstack-amd-sev-snp or dstack-aws-nitro-tpm)");
    if (!c.cvm.tee_simulator)
      return make_error(ErrorCode::kFailedPrecondition,
                        "tee simulator credentials are not configured on this VMM (add a [cvm.tee_simulator] table)");
  }
  auto app_id = internal::resolve_app_id(cfg.app_id, cfg.compose_file);
  if (!app_id.ok()) return app_id.error();

  VmManifest m;
  m.id = impl_->opt.only_vm.empty() ? new_vm_id() : impl_->opt.only_vm;
  m.name = cfg.name;
  m.app_id = *app_id;
  m.vcpu = cfg.vcpu;
  m.memory = cfg.memory;
  m.disk_size = cfg.disk_size;
  m.image = cfg.image;
  m.port_map = cfg.ports;
  m.created_at_ms = impl_->now_ms();
  m.kms_urls = cfg.kms_urls;
  m.gateway_urls = cfg.gateway_urls;
  m.no_tee = cfg.no_tee || cfg.simulated_tee.has_value();
  m.simulated_tee = cfg.simulated_tee;
  m.networks = *networks;
  m.hugepages = cfg.hugepages;
  m.pin_numa = cfg.pin_numa;
  if (cfg.gpus) {
    auto sel = GpuInventory::discover(impl_->opt.sysfs_root).resolve(c.cvm.gpu, *cfg.gpus);
    if (!sel.ok()) return sel.error();
    m.gpus = *sel;
  }
  if (m.hugepages || m.pin_numa) {  // the host must have what they need now, not at the first start
    auto numa = resolve_numa(impl_->opt.sysfs_root, m);
    if (!numa.ok()) return numa.error();
    if (auto s = check_hugepages(impl_->opt.sysfs_root, m, *numa); !s.ok()) return s.error();
  }
  auto volumes = internal::resolve_verity_volumes(facts->verity_volumes, c.cvm.volumes_dir);
  if (!volumes.ok()) return volumes.error();
  m.volumes = *volumes;
  m.swtpm = internal::needs_swtpm(facts->key_provider, m.simulated_tee);
  // What every start will need of the host and the image is checked now, not at the first start.
  if (auto s = impl_->preflight(m, *image, cfg.compose_file, *facts); !s.ok()) return s.error();

  auto vm = std::make_shared<Vm>();
  vm->manifest = m;
  vm->proc_known = true;  // a new VM has no process yet
  vm->creating = true;    // reload() must not take its folder, not there yet, for a vanished VM
  auto cid = impl_->allocate_cid(m.id);  // without mu: it may wait on the host-wide registry
  if (!cid.ok()) return cid.error();
  auto give_back_cid = [&] {
    {
      std::lock_guard lock(impl_->mu);
      impl_->cids.release(*cid);
    }
    if (impl_->cid_registry) impl_->cid_registry->release(*cid, m.id);
  };
  {
    std::unique_lock lock(impl_->mu);
    Status admitted = impl_->vms.count(m.id) ? Status(make_error(ErrorCode::kAlreadyExists, "VM " + m.id + " already exists"))
                                             : impl_->check_gpus_free(m);
    if (admitted.ok()) admitted = impl_->ports.reserve(m.id, m.port_map);
    if (!admitted.ok()) {
      lock.unlock();
      give_back_cid();
      return admitted.error();
    }
    vm->cid = *cid;
    if (impl_->channel == GuestChannel::Kind::kUserNet) {
      for (int attempt = 0; attempt < 16 && !vm->agent_port; ++attempt) {
        auto port = internal::pick_loopback_port();
        if (port.ok() && !impl_->agent_ports.count(*port)) vm->agent_port = *port;
      }
      impl_->agent_ports.insert(vm->agent_port);
    }
    impl_->vms[m.id] = vm;
  }
  VmPaths p = impl_->paths(m.id);
  bool made_dir = false;
  auto fail = [&](Error e) -> Result<std::string> {
    (void)impl_->launcher->stop(m.id);
    bool stopped = impl_->wait_stopped(m.id, impl_->opt.stop_timeout).ok();
    (void)impl_->launcher->remove(m.id);
    // Never a folder this call did not make, nor one a QEMU may still use.
    if (made_dir && stopped) (void)internal::remove_tree(p.dir);
    impl_->release(m.id);
    return e;
  };
  // The folder must be new (ids are random; an existing one is not ours to fill or delete),
  // and the marker goes in before anything else so that a crash leaves a folder start-up
  // knows it may discard.
  if (::mkdir(p.dir.c_str(), 0755) != 0)
    return fail(make_error(ErrorCode::kIo, "cannot create " + p.dir.string() + ": " + std::strerror(errno)));
  made_dir = true;
  if (int fd = ::open(p.creating_marker().c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644); fd >= 0) {
    ::close(fd);
  } else {
    return fail(make_error(ErrorCode::kIo, "cannot create " + p.creating_marker().string() + ": " + std::strerror(errno)));
  }
  if (auto s = internal::write_runtime(p, {vm->cid, vm->agent_port}); !s.ok()) return fail(s.error());
  if (auto s = internal::write_new_workdir(p, m, cfg); !s.ok()) return fail(s.error());
  if (::unlink(p.creating_marker().c_str()) != 0)
    return fail(make_error(ErrorCode::kIo, "cannot finish creating " + p.dir.string() + ": " + std::strerror(errno)));
  impl_->refresh_cache(m.id, *vm);
  {
    std::lock_guard lock(impl_->mu);
    vm->creating = false;
    VmActivity a;
    a.vm_id = m.id;
    a.kind = "created";
    a.status = vm_status_name(vm->status);
    impl_->record(std::move(a));
  }
  if (!cfg.stopped) {
    std::lock_guard op(vm->op);
    if (auto s = impl_->launch(m.id, *vm); !s.ok()) return fail(s.error());
  }
  log_message(LogLevel::kInfo, "vmm", "created VM " + m.id + " (" + m.name + ", CID " + std::to_string(vm->cid) + ")");
  return m.id;
}

Status VmManager::resize(const std::string& id, std::optional<uint32_t> vcpu, std::optional<uint32_t> memory,
                         std::optional<uint32_t> disk_size, std::optional<std::string> image) {
  VmUpdate u;
  u.id = id;
  u.vcpu = vcpu;
  u.memory = memory;
  u.disk_size = disk_size;
  u.image = std::move(image);
  if (!vcpu && !memory && !disk_size && !u.image) return invalid("resize request contains no updates");
  if (u.image && u.image->empty()) return invalid("image must not be empty");
  auto r = update(u);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::string> VmManager::update(const VmUpdate& u) {
  auto vm = impl_->find(u.id);
  if (!vm.ok()) return vm.error();
  std::lock_guard op((*vm)->op);
  const Config& c = impl_->opt.config;
  VmPaths p = impl_->paths(u.id);
  VmManifest m;
  {
    std::lock_guard lock(impl_->mu);
    if ((*vm)->removing) return make_error(ErrorCode::kFailedPrecondition, "VM is being removed");
    m = (*vm)->manifest;
  }
  std::string new_app_id;
  std::string compose = u.compose_file && !u.compose_file->empty() ? *u.compose_file : internal::read_file(p.compose()).value_or("");
  auto facts = internal::read_compose(compose);
  if (u.compose_file && !u.compose_file->empty()) {
    if (!facts.ok()) return facts.error();
    new_app_id = *internal::resolve_app_id(std::nullopt, *u.compose_file);
  }
  bool resources = u.vcpu || u.memory || u.disk_size || u.image;
  bool grow_disk = false;
  if (resources) {
    auto is_running = impl_->running(u.id);
    if (!is_running) return make_error(ErrorCode::kUnavailable, "cannot tell whether VM " + u.id + " runs; try again");
    if (*is_running) return make_error(ErrorCode::kFailedPrecondition, "vm should be stopped before resize: " + u.id);
    uint32_t disk = u.disk_size.value_or(m.disk_size);
    if (disk < m.disk_size) return invalid("Cannot shrink disk size");
    if (auto s = check_limits(c.cvm, u.vcpu.value_or(m.vcpu), u.memory.value_or(m.memory), disk); !s.ok()) return s.error();
    if (u.image) {
      if (auto img = load_image(c.image.path, *u.image); !img.ok()) return img.error().context("Failed to load image");
      else if (auto s = check_image_can_start(*img); !s.ok()) return s.error();
      m.image = *u.image;
    }
    std::error_code ec;
    grow_disk = disk > m.disk_size && std::filesystem::exists(p.hda(), ec);  // once the files are staged
    m.vcpu = u.vcpu.value_or(m.vcpu);
    m.memory = u.memory.value_or(m.memory);
    m.disk_size = disk;
  }
  if (u.gpus) {
    auto sel = GpuInventory::discover(impl_->opt.sysfs_root).resolve(c.cvm.gpu, *u.gpus);
    if (!sel.ok()) return sel.error();
    m.gpus = *sel;
  }
  if (u.no_tee) m.no_tee = *u.no_tee;
  if (u.kms_urls) m.kms_urls = *u.kms_urls;
  if (u.gateway_urls) m.gateway_urls = *u.gateway_urls;
  if (u.networks) {
    auto networks = impl_->resolve_requested_networks(*u.networks);
    if (!networks.ok()) return networks.error();
    m.networks = *networks;
  }
  if (u.ports) {
    std::vector<PortMapping> ports = *u.ports;
    if (auto s = validate_port_mappings(c.cvm.port_mapping, ports); !s.ok()) return s.error();
    m.port_map = ports;
  }
  if (auto s = check_ports_reachable(m.port_map, m.networks); !s.ok()) return s.error();
  // As upstream, on every update: the software TPM follows the compose (a VM's own verity
  // volumes stay as resolved at create).
  const bool tee_inputs_change = u.compose_file || u.image || u.memory || u.no_tee || u.gpus;
  if (facts.ok()) m.swtpm = internal::needs_swtpm(facts->key_provider, m.simulated_tee);
  if (facts.ok() && tee_inputs_change) {
    auto image = load_image(c.image.path, m.image);
    if (!image.ok()) return image.error().context("Failed to load image");
    if (auto s = impl_->preflight(m, *image, compose, *facts); !s.ok()) return s.error();
  }
  if (u.encrypted_env)
    if (auto s = check_encrypted_env(*u.encrypted_env); !s.ok()) return s.error();
  {
    std::lock_guard lock(impl_->mu);
    if (auto s = impl_->check_gpus_free(m); !s.ok()) return s.error();
    if (auto s = impl_->ports.reserve(u.id, m.port_map); !s.ok()) return s.error();
  }
  // All files or none: a full disk fails the update before anything is replaced, and the
  // port reservation goes back to what the manifest on disk still says.
  auto undo = [&](Error e) -> Result<std::string> {
    std::lock_guard lock(impl_->mu);
    (void)impl_->ports.reserve(u.id, (*vm)->manifest.port_map);
    return e;
  };
  internal::FileBatch files;
  if (u.compose_file && !u.compose_file->empty())
    if (auto s = files.stage(p.compose(), *u.compose_file); !s.ok()) return undo(s.error());
  if (u.encrypted_env && !u.encrypted_env->empty())
    if (auto s = files.stage(p.encrypted_env(), *u.encrypted_env, 0600); !s.ok()) return undo(s.error());
  if (u.user_config && !u.user_config->empty())
    if (auto s = files.stage(p.user_config(), *u.user_config); !s.ok()) return undo(s.error());
  if (auto s = files.stage(p.manifest(), manifest_to_json(m)); !s.ok()) return undo(s.error());
  if (grow_disk)
    if (auto s = internal::run_command({impl_->opt.qemu_img, "resize", "-q", p.hda().string(), std::to_string(m.disk_size) + "G"},
                                       "Failed to resize disk");
        !s.ok())
      return undo(s.error());
  if (auto s = files.commit(); !s.ok()) return undo(s.error());
  {
    std::lock_guard lock(impl_->mu);
    (*vm)->manifest = m;
    impl_->forget_files(**vm);
  }
  impl_->refresh_cache(u.id, **vm);
  return new_app_id;
}

Result<VmInfo> VmManager::info(const std::string& id, bool with_files) const { return impl_->describe(id, with_files); }

std::vector<NetworkInterfaceStatus> VmManager::Impl::interfaces_of(const std::string& id, const std::vector<NetworkSpec>& requested) const {
  std::vector<NetworkInterfaceStatus> out;
  auto nets = resolve_networks(opt.config.cvm.networking, requested);
  for (size_t i = 0; i < nets.size(); ++i) {
    const auto& n = nets[i];
    NetworkInterfaceStatus s;
    s.mode = n.mode;
    s.backend = n.mode == "user" ? "slirp" : n.mode == "bridge" ? "tap_bridge" : "custom";
    s.mac = mac_address(id, n.mac_prefix, i);
    if (n.mode == "bridge") s.bridge_name = n.bridge;
    s.netdev_id = "net" + std::to_string(i);
    out.push_back(s);
  }
  return out;
}

Result<VmInfo> VmManager::Impl::describe(const std::string& id, bool with_files) const {
  auto vm = find(id);
  if (!vm.ok()) return vm.error();
  return describe(id, **vm, with_files);
}

VmInfo VmManager::Impl::describe(const std::string& id, const Vm& v, bool with_files, bool with_configuration) const {
  VmInfo info;
  std::optional<ProcessInfo> proc;  // cheap: Vm::proc holds no spec (see process_state)
  {
    std::lock_guard lock(mu);
    info.id = id;
    info.name = v.manifest.name;
    info.app_id = v.manifest.app_id;
    info.created_at_ms = v.manifest.created_at_ms;
    info.cid = v.cid;
    info.agent_port = v.agent_port;
    info.degraded = v.degraded;
    if (!v.proc_known && !v.removing) info.degraded = "process state unknown: " + launcher_error;
    info.boot_progress = v.boot_progress;
    info.boot_error = v.boot_error;
    info.shutdown_progress = v.shutdown_progress;
    info.events.assign(v.events.begin(), v.events.end());
    info.status = status_of(v);
    if (with_configuration) info.configuration = internal::read_configuration(v.manifest, v.started);
    proc = v.proc;
    info.image_version = v.image_version;
    info.instance_id = v.instance_id;
    const Config& c = opt.config;
    info.app_url = internal::app_url(v.gateway_enabled, v.instance_id, v.manifest.gateway_urls, c.gateway.base_domain,
                                     c.gateway.port, c.gateway.agent_port);
    if (!v.interfaces_from || *v.interfaces_from != v.manifest.networks) {
      v.interfaces = interfaces_of(id, v.manifest.networks);
      v.interfaces_from = v.manifest.networks;
    }
    info.interfaces = v.interfaces;
  }
  if (with_files) files_of(id, v).add_to(&info.configuration);
  bool is_running = proc && proc->status == ProcessStatus::kRunning;
  int64_t now = static_cast<int64_t>(now_ms() / 1000);
  info.uptime = is_running && proc->started_at ? format_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - *proc->started_at)))
                                               : "never";
  info.exited_at = !is_running && proc && proc->stopped_at
                       ? format_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - *proc->stopped_at)))
                       : "never";
  if (is_running) info.pid = proc->pid;
  return info;
}

internal::ConfigurationFiles VmManager::Impl::files_of(const std::string& id, const Vm& v) const {
  uint64_t generation;
  {
    std::lock_guard lock(mu);
    if (v.files) return *v.files;
    generation = v.files_generation;
  }
  // Read without mu: a slow disk delays this VM's answer, not every call.
  auto read = internal::read_configuration_files(paths(id));
  std::lock_guard lock(mu);
  // Kept unless a write came in between, the folder is still being made, or it would go over
  // the budget.
  if (!v.files && v.files_generation == generation && !v.creating && !v.removing &&
      files_cached_bytes + read.bytes() <= kFilesCacheBytes) {
    v.files = std::make_shared<const internal::ConfigurationFiles>(read);
    files_cached_bytes += read.bytes();
  }
  return read;
}

void VmManager::Impl::forget_files(const Vm& v) const {
  ++v.files_generation;
  if (!v.files) return;
  files_cached_bytes -= v.files->bytes();
  v.files.reset();
}

std::vector<VmInfo> VmManager::list(bool with_files) const {
  VmQuery q;
  q.with_files = with_files;
  return query(q).vms;
}

VmPage VmManager::query(const VmQuery& q) const {
  // Which VMs and in what order (creation time, then id), from memory alone and without a
  // copy per VM (sorted under mu, which keeps the table's entries alive); then only the page
  // is described.
  using Entry = std::pair<const std::string, std::shared_ptr<Vm>>;
  std::vector<std::pair<uint64_t, const Entry*>> hits;
  std::vector<std::pair<std::string, std::shared_ptr<Vm>>> chosen;
  VmPage out;
  {
    std::lock_guard lock(impl_->mu);
    hits.reserve(q.ids.empty() ? impl_->vms.size() : q.ids.size());
    auto matches = [&](const Vm& v) {
      if (q.keyword.empty()) return true;
      const VmManifest& m = v.manifest;
      for (const auto* field : {&m.name, &m.id, &m.app_id, &m.image})
        if (field->find(q.keyword) != std::string::npos) return true;
      return false;
    };
    if (!q.ids.empty()) {
      for (const auto& id : q.ids)
        if (auto it = impl_->vms.find(id); it != impl_->vms.end() && matches(*it->second))
          hits.emplace_back(it->second->manifest.created_at_ms, &*it);
    } else {
      for (const auto& entry : impl_->vms)
        if (matches(*entry.second)) hits.emplace_back(entry.second->manifest.created_at_ms, &entry);
    }
    auto less = [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : a.second->first < b.second->first; };
    std::sort(hits.begin(), hits.end(), less);
    hits.erase(std::unique(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.second == b.second; }),
               hits.end());  // an id asked for twice
    out.total = hits.size();
    size_t begin = 0, end = hits.size();
    if (q.page > 0 && q.page_size > 0) {
      begin = std::min<size_t>(hits.size(), size_t{q.page - 1} * q.page_size);
      end = std::min<size_t>(hits.size(), begin + q.page_size);
    }
    chosen.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) chosen.emplace_back(hits[i].second->first, hits[i].second->second);
  }
  // From the cache the watch thread keeps: a listing asks the launcher nothing, so a slow
  // or absent supervisor never delays it. A VM removed since is described as it was.
  out.vms.reserve(chosen.size());
  for (const auto& [id, vm] : chosen)
    out.vms.push_back(impl_->describe(id, *vm, q.with_configuration && q.with_files, q.with_configuration));
  return out;
}

Result<ImageListing> VmManager::images() const { return list_images(impl_->opt.config.image.path); }

const Config& VmManager::config() const { return impl_->opt.config; }
const std::filesystem::path& VmManager::sysfs_root() const { return impl_->opt.sysfs_root; }

}  // namespace dstackvmm
