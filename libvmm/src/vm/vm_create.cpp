// SPDX-License-Identifier: Apache-2.0
// VmManager::create, step by step: check the request and build the manifest (nothing held
// yet), admit the VM (CID, ports, GPUs, agent port, a place among the VMs), write its
// workdir behind a marker, and start it unless asked not to. A step that fails undoes what
// the ones before it took, and never deletes a folder this call did not make.
#include <dstackvmm/vm_manager.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_id.hpp>

#include "base/fs_util.hpp"
#include "tee/compose_facts.hpp"
#include "tee/verity_volumes.hpp"
#include "vm/app_compose.hpp"
#include "vm/vm_checks.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

struct VmManager::Impl::Create {
  Impl& im;
  VmConfiguration& cfg;  // its ports are normalised by the check
  std::optional<internal::ComposeFacts> facts;
  std::optional<Image> image;
  std::vector<NetworkSpec> networks;  // as resolved over [cvm.networking]
  std::string app_id;
  VmManifest m;
  std::shared_ptr<Vm> vm = std::make_shared<Vm>();
  uint32_t cid = 0;
  bool made_dir = false;

  // Everything about the request that can be refused before anything is taken.
  Status check_request() {
    const Config& c = im.opt.config;
    if (auto s = internal::validate_vm_name(cfg.name); !s.ok()) return s;
    auto read = internal::read_compose(cfg.compose_file);
    if (!read.ok()) return read.error();
    facts = std::move(*read);
    if (auto s = validate_image_name(cfg.image); !s.ok()) return s;
    auto loaded = load_image(c.image.path, cfg.image);
    if (!loaded.ok()) return loaded.error().context("Failed to load image");
    image = std::move(*loaded);
    if (auto s = internal::check_image_can_start(*image); !s.ok()) return s;
    if (auto s = internal::check_limits(c.cvm, cfg.vcpu, cfg.memory, cfg.disk_size); !s.ok()) return s;
    auto resolved = im.resolve_requested_networks(cfg.networks);
    if (!resolved.ok()) return resolved.error();
    networks = std::move(*resolved);
    if (auto s = validate_port_mappings(c.cvm.port_mapping, cfg.ports); !s.ok()) return s;
    if (auto s = internal::check_ports_reachable(cfg.ports, networks); !s.ok()) return s;
    if (auto s = internal::check_encrypted_env(cfg.encrypted_env); !s.ok()) return s;
    if (cfg.simulated_tee)
      if (auto s = internal::check_simulated_tee(c.cvm, *cfg.simulated_tee); !s.ok()) return s;
    auto id = internal::resolve_app_id(cfg.app_id, cfg.compose_file);
    if (!id.ok()) return id.error();
    app_id = *id;
    return {};
  }

  // The manifest: the request's fields, with what the host resolves (NICs, GPUs, NUMA, verity
  // volumes) and what every start will need of the host and the image checked now, not at
  // the first start.
  Status build_manifest() {
    const Config& c = im.opt.config;
    m = manifest_for(cfg);
    m.id = im.opt.only_vm.empty() ? new_vm_id() : im.opt.only_vm;
    m.app_id = app_id;
    m.created_at_ms = im.now_ms();
    m.networks = networks;
    if (cfg.gpus) {
      auto sel = GpuInventory::discover(im.opt.sysfs_root).resolve(c.cvm.gpu, *cfg.gpus);
      if (!sel.ok()) return sel.error();
      m.gpus = *sel;
    }
    if (m.hugepages || m.pin_numa) {  // the host must have what they need now, not at the first start
      auto numa = resolve_numa(im.opt.sysfs_root, m);
      if (!numa.ok()) return numa.error();
      if (auto s = check_hugepages(im.opt.sysfs_root, m, *numa); !s.ok()) return s;
    }
    auto volumes = internal::resolve_verity_volumes(facts->verity_volumes, c.cvm.volumes_dir);
    if (!volumes.ok()) return volumes.error();
    m.volumes = *volumes;
    m.swtpm = internal::needs_swtpm(facts->key_provider, m.simulated_tee);
    return im.preflight(m, *image, cfg.compose_file, *facts);
  }

  // A CID (without mu: it may wait on the host-wide registry), then under mu the ports, the
  // GPUs, the agent port and the VM's place among the VMs, all or none.
  Status admit() {
    vm->manifest = m;
    vm->proc_known = true;  // a new VM has no process yet
    vm->creating = true;    // reload() must not take its folder, not there yet, for a vanished VM
    auto got = im.allocate_cid(m.id);
    if (!got.ok()) return got.error();
    cid = *got;
    std::unique_lock lock(im.mu);
    Status admitted = im.vms.count(m.id) ? Status(make_error(ErrorCode::kAlreadyExists, "VM " + m.id + " already exists"))
                                         : im.check_gpus_free(m);
    if (admitted.ok()) admitted = im.ports.reserve(m.id, m.port_map);
    if (!admitted.ok()) {
      im.cids.release(cid);
      lock.unlock();
      if (im.cid_registry) im.cid_registry->release(cid, m.id);
      return admitted;
    }
    vm->cid = cid;
    if (im.channel == GuestChannel::Kind::kUserNet) {
      for (int attempt = 0; attempt < 16 && !vm->agent_port; ++attempt) {
        auto port = internal::pick_loopback_port();
        if (port.ok() && !im.agent_ports.count(*port)) vm->agent_port = *port;
      }
      im.agent_ports.insert(vm->agent_port);
    }
    im.vms[m.id] = vm;
    im.listing_moved();
    return {};
  }

  // The folder must be new (ids are random; an existing one is not ours to fill or delete),
  // and the marker goes in before anything else so that a crash leaves a folder start-up
  // knows it may discard. The files are not synced here and the marker stays:
  // finish_new_workdir() does both, once.
  Status write_workdir(const VmPaths& p) {
    if (::mkdir(p.dir.c_str(), 0755) != 0)
      return make_error(ErrorCode::kIo, "cannot create " + p.dir.string() + ": " + std::strerror(errno));
    made_dir = true;
    int fd = ::open(p.creating_marker().c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(ErrorCode::kIo, "cannot create " + p.creating_marker().string() + ": " + std::strerror(errno));
    ::close(fd);
    if (auto s = internal::write_runtime(p, {vm->cid, vm->agent_port}); !s.ok()) return s;
    return internal::write_new_workdir(p, m, cfg);
  }

  void created() {
    im.refresh_cache(m.id, *vm);
    std::lock_guard lock(im.mu);
    im.transition(m.id, *vm, {.kind = VmTransition::Kind::kCreated});
    VmActivity a;
    a.vm_id = m.id;
    a.kind = "created";
    a.status = vm_status_name(vm->status);
    im.record(std::move(a));
  }

  // After admit(): stops what may have started, deletes the folder only when this call made
  // it and no QEMU may still use it, and gives back what admit() took.
  Error undo(Error e, const VmPaths& p) {
    (void)im.launcher->stop(m.id);
    bool stopped = im.wait_stopped(m.id, im.opt.stop_timeout).ok();
    (void)im.launcher->remove(m.id);
    if (made_dir && stopped) (void)internal::remove_tree(p.dir);
    im.release(m.id);
    return e;
  }
};

Result<std::string> VmManager::create(VmConfiguration cfg) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  Impl::Create c{*impl_, cfg};
  if (auto s = c.check_request(); !s.ok()) return s.error();
  if (auto s = c.build_manifest(); !s.ok()) return s.error();
  if (auto s = c.admit(); !s.ok()) return s.error();
  VmPaths p = impl_->paths(c.m.id);
  if (auto s = c.write_workdir(p); !s.ok()) return c.undo(s.error(), p);
  if (cfg.stopped) {
    if (auto s = internal::finish_new_workdir(p); !s.ok()) return c.undo(s.error(), p);
    c.created();
  } else {
    // QEMU first, then the folder's fsyncs (~3.5 ms here) while it starts: the create still
    // answers only once its VM is durable. Until then the marker stays, and a daemon killed
    // in between finds a marked folder whose QEMU runs, which open() finishes (its files were
    // all written before the launch); after a power cut no QEMU runs and it is discarded.
    c.created();
    std::lock_guard op(c.vm->op);
    if (auto s = impl_->launch(c.m.id, *c.vm, impl_->opt.only_vm.empty()); !s.ok()) return c.undo(s.error(), p);
    if (auto s = internal::finish_new_workdir(p); !s.ok()) return c.undo(s.error(), p);
  }
  log_message(LogLevel::kInfo, "vmm", "created VM " + c.m.id + " (" + c.m.name + ", CID " + std::to_string(c.vm->cid) + ")");
  return c.m.id;
}

}  // namespace dstackvmm
