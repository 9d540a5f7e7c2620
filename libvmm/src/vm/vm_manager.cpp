// SPDX-License-Identifier: Apache-2.0
// VmManager: opening a run_path, creating and updating VMs, and describing them.
#include <dstackvmm/vm_manager.hpp>

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
#include "vm/app_compose.hpp"
#include "vm/vm_checks.hpp"
#include "base/fs_util.hpp"
#include "base/text_util.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;


// Everything about the NICs that can be known before a start: the requested list merged over
// the node default (what the manifest records, as upstream), and each bridge present now.
Result<std::vector<NetworkSpec>> VmManager::Impl::resolve_requested_networks(const std::vector<NetworkSpec>& requested) const {
  if (auto s = internal::check_networks(requested); !s.ok()) return s.error();
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
  // The folders still to read are left unread; the loader starts no thread once told.
  impl_->load_cancel = true;
  if (impl_->loader.joinable()) impl_->loader.join();
  impl_->serial_watch.reset();  // its callback enters the manager: it goes first
  {
    std::lock_guard lock(impl_->restarter_mu);
    impl_->stopping = true;
  }
  impl_->restarter_cv.notify_all();
  if (impl_->restarter.joinable()) impl_->restarter.join();
  if (impl_->rotator.joinable()) impl_->rotator.join();
  {
    std::lock_guard lock(impl_->removal_quiet_mu);
    impl_->removals_now = true;
  }
  impl_->removal_quiet_cv.notify_all();
  impl_->removals.drain();
  {
    std::lock_guard lock(impl_->registry_release_mu);
    impl_->registry_flush_now = true;
  }
  impl_->registry_release_cv.notify_all();
  impl_->registry_flusher.drain();
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
    if (auto it = vms.find(id); it != vms.end()) {
      it->second->degraded = error.message;
      touch(*it->second);
    }
  }
}

Result<VmManager::Impl::VmFolder> VmManager::Impl::read_folder(const std::string& id) const {
  VmPaths p = paths(id);
  auto manifest = internal::read_manifest(p);
  if (!manifest.ok()) return manifest.error();
  internal::migrate_launch_records(p);
  return VmFolder{std::move(*manifest), internal::read_state(p), internal::read_runtime(p)};
}

Result<std::shared_ptr<Vm>> VmManager::Impl::add_vm(const std::string& id, VmFolder f) {
  auto vm = std::make_shared<Vm>();
  vm->manifest = std::move(f.manifest);
  vm->started = f.started;
  // The CID and agent port the VM had (a running QEMU was started with them) when still free:
  // the launcher's entry knows the CID a QEMU runs with even when an upstream VMM started it
  // (its VMs have no vm-runtime.json).
  const auto& runtime = f.runtime;
  auto listed = launcher_cids.find(id);
  // Outside this VMM's pool (another VMM's [cvm] cid range) it is still the QEMU's CID, as
  // upstream keeps it; no allocation here can hand it out.
  auto taken = listed == launcher_cids.end() || !listed->second ? Status(make_error(ErrorCode::kNotFound, ""))
                                                                 : cids.occupy(listed->second);
  if (listed != launcher_cids.end() && listed->second && (taken.ok() || taken.error().code == ErrorCode::kInvalidArgument)) {
    vm->cid = listed->second;  // the host-wide registry is asked for it by claim_cids()
    if (!runtime || runtime->cid != vm->cid)
      (void)internal::write_runtime(paths(id), {vm->cid, runtime ? runtime->agent_port : uint16_t{0}});
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
  if (auto s = ports.reserve(id, vm->manifest.port_map); !s.ok())
    log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + s.error().message);
  vms[id] = vm;
  listing_moved();
  return vm;
}

Result<std::shared_ptr<Vm>> VmManager::Impl::load_vm(const std::string& id) {
  auto folder = read_folder(id);
  if (!folder.ok()) return folder.error();
  return add_vm(id, std::move(*folder));
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

namespace {
// What differs between the manifest a process was started with and the VM's now.
std::vector<std::string> pending_between(const VmManifest& booted, const VmManifest& now, bool files_changed) {
  std::vector<std::string> out;
  auto note = [&](bool changed, const char* what) {
    if (changed) out.push_back(what);
  };
  note(booted.vcpu != now.vcpu || booted.memory != now.memory || booted.disk_size != now.disk_size, "resources");
  note(booted.image != now.image, "image");
  note(booted.port_map != now.port_map, "ports");
  note(booted.gpus != now.gpus, "gpus");
  note(booted.networks != now.networks, "networking");
  note(booted.kms_urls != now.kms_urls || booted.gateway_urls != now.gateway_urls, "urls");
  note(booted.hugepages != now.hugepages || booted.pin_numa != now.pin_numa || booted.no_tee != now.no_tee ||
           booted.simulated_tee != now.simulated_tee,
       "machine");
  note(files_changed || booted.app_id != now.app_id, "app compose, env or user config");
  return out;
}

// The two values of a VmInfo that move with the clock, from the process's times.
void set_times(VmInfo& info, const std::optional<ProcessInfo>& proc, uint64_t now_ms) {
  bool is_running = proc && proc->status == ProcessStatus::kRunning;
  int64_t now = static_cast<int64_t>(now_ms / 1000);
  info.uptime = is_running && proc->started_at ? format_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - *proc->started_at)))
                                               : "never";
  info.exited_at = !is_running && proc && proc->stopped_at
                       ? format_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - *proc->stopped_at)))
                       : "never";
}
}  // namespace

VmInfo VmManager::Impl::describe(const std::string& id, const Vm& v, bool with_files, bool with_configuration) const {
  VmInfo info;
  std::optional<ProcessInfo> proc;  // cheap: Vm::proc holds no spec (see process_state)
  {
    std::lock_guard lock(mu);
    ++described;
    info.revision = v.revision;
    info.id = id;
    info.name = v.manifest.name;
    info.app_id = v.manifest.app_id;
    info.created_at_ms = v.manifest.created_at_ms;
    info.cid = v.cid;
    info.agent_port = v.agent_port;
    info.status = status_of(v);
    info.degraded = v.degraded;
    if (info.status == VmStatus::kUnknown) info.degraded = "process state unknown: " + launcher_error;
    info.boot_progress = v.boot_progress;
    info.boot_error = v.boot_error;
    info.shutdown_progress = v.shutdown_progress;
    info.events.assign(v.events.begin(), v.events.end());
    if (with_configuration) info.configuration = configuration_of(v.manifest, v.started);
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
    if (v.booted && v.proc && v.proc->status == ProcessStatus::kRunning)
      info.pending_changes = pending_between(*v.booted, v.manifest, v.files_generation != v.booted_files_generation);
  }
  if (with_files) files_of(id, v).add_to(&info.configuration);
  set_times(info, proc, now_ms());
  if (proc && proc->status == ProcessStatus::kRunning) info.pid = proc->pid;
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

void VmManager::Impl::forget_files(Vm& v) const {
  touch(v);
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

bool VmManager::Impl::listed_before(const VmEntry* a, const VmEntry* b) {
  uint64_t ta = a->second->manifest.created_at_ms, tb = b->second->manifest.created_at_ms;
  return ta != tb ? ta < tb : a->first < b->first;
}

const std::vector<const VmManager::Impl::VmEntry*>& VmManager::Impl::ordered() const {
  if (order_stale) {
    order.clear();
    order.reserve(vms.size());
    for (const auto& entry : vms) order.push_back(&entry);
    std::sort(order.begin(), order.end(), listed_before);
    order_stale = false;
  }
  return order;
}

VmPage VmManager::query(const VmQuery& q) const {
  // Which VMs and in what order (creation time, then id), from memory alone and without a
  // copy per VM (sorted under mu, which keeps the table's entries alive); then only the page
  // is described.
  using Entry = Impl::VmEntry;
  std::vector<const Entry*> hits;
  std::vector<std::pair<std::string, std::shared_ptr<Vm>>> chosen;
  VmPage out;
  {
    std::unique_lock lock(impl_->mu);
    // VMs asked for by id are waited for (Impl::unsettled); a listing of all shows those read
    // so far (read_later_above).
    if (std::any_of(q.ids.begin(), q.ids.end(), [&](const std::string& id) { return impl_->unsettled(id); }))
      impl_->loaded_cv.wait(lock, [&] { return !impl_->loading; });
    uint64_t now = impl_->now_ms();
    out.stamp = {impl_->listing_revision, static_cast<int64_t>(now / 1000)};
    if (q.unless_changed_since && *q.unless_changed_since == out.stamp) {
      out.unchanged = true;
      return out;
    }
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
          hits.push_back(&*it);
      std::sort(hits.begin(), hits.end(), Impl::listed_before);
      hits.erase(std::unique(hits.begin(), hits.end()), hits.end());  // an id asked for twice
    } else {
      for (const Entry* entry : impl_->ordered())
        if (matches(*entry->second)) hits.push_back(entry);
    }
    out.total = hits.size();
    size_t begin = 0, end = hits.size();
    if (q.page > 0 && q.page_size > 0) {
      begin = std::min<size_t>(hits.size(), size_t{q.page - 1} * q.page_size);
      end = std::min<size_t>(hits.size(), begin + q.page_size);
    }
    chosen.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) chosen.emplace_back(hits[i]->first, hits[i]->second);
    if (q.known) {
      // Each VM's revision and times, in the same look: what a caller that holds the VM at
      // that revision gets (the rest is described below, for those it does not hold).
      out.vms.resize(chosen.size());
      for (size_t i = 0; i < chosen.size(); ++i) {
        out.vms[i].id = chosen[i].first;
        out.vms[i].revision = chosen[i].second->revision;
        set_times(out.vms[i], chosen[i].second->proc, now);
      }
    }
  }
  // From the cache the watch thread keeps: a listing asks the launcher nothing, so a slow
  // or absent supervisor never delays it. A VM removed since is described as it was.
  if (!q.known) out.vms.resize(chosen.size());
  for (size_t i = 0; i < chosen.size(); ++i) {
    const auto& [id, vm] = chosen[i];
    if (q.known && q.known(id, out.vms[i].revision)) continue;
    out.vms[i] = impl_->describe(id, *vm, q.with_configuration && q.with_files, q.with_configuration);
  }
  return out;
}

Result<ImageListing> VmManager::images() const { return list_images(impl_->opt.config.image.path); }

const Config& VmManager::config() const { return impl_->opt.config; }
const std::filesystem::path& VmManager::sysfs_root() const { return impl_->opt.sysfs_root; }

}  // namespace dstackvmm
