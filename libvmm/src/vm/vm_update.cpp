// SPDX-License-Identifier: Apache-2.0
// VmManager::update and resize, step by step: the new compose read, then each group of fields
// applied to a copy of the manifest (resources, attachments, what a TEE start depends on), the
// placement reserved, and every file replaced together or none. Changes apply at the next start.
#include <dstackvmm/vm_manager.hpp>

#include "base/fs_util.hpp"
#include "tee/compose_facts.hpp"
#include "vm/app_compose.hpp"
#include "vm/vm_checks.hpp"
#include "vm/vm_manager_impl.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

using internal::VmPaths;

struct VmManager::Impl::Update {
  Impl& im;
  const VmUpdate& u;
  Vm& vm;
  VmPaths p;
  VmManifest m;  // the VM's manifest, changed as the update says
  std::string compose;  // the compose the VM will have
  std::optional<internal::ComposeFacts> facts;  // of `compose`, when it reads
  std::string new_app_id;
  bool grow_disk = false;

  Status read_compose() {
    bool replaced = u.compose_file && !u.compose_file->empty();
    compose = replaced ? *u.compose_file : internal::read_file(p.compose()).value_or("");
    auto read = internal::read_compose(compose);
    if (read.ok()) facts = std::move(*read);
    if (!replaced) return {};
    if (!read.ok()) return read.error();
    new_app_id = *internal::resolve_app_id(std::nullopt, *u.compose_file);
    return {};
  }

  // vcpu, memory, disk and image: only while the VM is stopped; disks only grow.
  Status apply_resources() {
    const Config& c = im.opt.config;
    if (!(u.vcpu || u.memory || u.disk_size || u.image)) return {};
    auto is_running = im.running(u.id);
    if (!is_running) return make_error(ErrorCode::kUnavailable, "cannot tell whether VM " + u.id + " runs; try again");
    if (*is_running) return make_error(ErrorCode::kFailedPrecondition, "vm should be stopped before resize: " + u.id);
    uint32_t disk = u.disk_size.value_or(m.disk_size);
    if (disk < m.disk_size) return make_error(ErrorCode::kInvalidArgument, "Cannot shrink disk size");
    if (auto s = internal::check_limits(c.cvm, u.vcpu.value_or(m.vcpu), u.memory.value_or(m.memory), disk); !s.ok()) return s;
    if (u.image) {
      auto img = load_image(c.image.path, *u.image);
      if (!img.ok()) return img.error().context("Failed to load image");
      if (auto s = internal::check_image_can_start(*img); !s.ok()) return s;
      m.image = *u.image;
    }
    std::error_code ec;
    grow_disk = disk > m.disk_size && std::filesystem::exists(p.hda(), ec);  // once the files are staged
    m.vcpu = u.vcpu.value_or(m.vcpu);
    m.memory = u.memory.value_or(m.memory);
    m.disk_size = disk;
    return {};
  }

  // GPUs, TEE, service URLs, NICs and ports.
  Status apply_attachments() {
    const Config& c = im.opt.config;
    if (u.gpus) {
      auto sel = GpuInventory::discover(im.opt.sysfs_root).resolve(c.cvm.gpu, *u.gpus);
      if (!sel.ok()) return sel.error();
      m.gpus = *sel;
    }
    if (u.no_tee) m.no_tee = *u.no_tee;
    if (u.kms_urls) m.kms_urls = *u.kms_urls;
    if (u.gateway_urls) m.gateway_urls = *u.gateway_urls;
    if (u.networks) {
      auto networks = im.resolve_requested_networks(*u.networks);
      if (!networks.ok()) return networks.error();
      m.networks = *networks;
    }
    if (u.ports) {
      std::vector<PortMapping> ports = *u.ports;
      if (auto s = validate_port_mappings(c.cvm.port_mapping, ports); !s.ok()) return s;
      m.port_map = std::move(ports);
    }
    return internal::check_ports_reachable(m.port_map, m.networks);
  }

  // As upstream, on every update: the software TPM follows the compose (a VM's own verity
  // volumes stay as resolved at create); what a start would refuse is refused now.
  Status check_tee_inputs() {
    const bool tee_inputs_change = u.compose_file || u.image || u.memory || u.no_tee || u.gpus;
    if (facts) m.swtpm = internal::needs_swtpm(facts->key_provider, m.simulated_tee);
    if (!facts || !tee_inputs_change) return {};
    auto image = load_image(im.opt.config.image.path, m.image);
    if (!image.ok()) return image.error().context("Failed to load image");
    return im.preflight(m, *image, compose, *facts);
  }

  // The port reservation goes back to what the manifest on disk still says.
  Error undo(Error e) {
    std::lock_guard lock(im.mu);
    (void)im.ports.reserve(u.id, vm.manifest.port_map);
    return e;
  }

  // All files or none: a full disk fails the update before anything is replaced.
  Status write_files() {
    internal::FileBatch files;
    if (u.compose_file && !u.compose_file->empty())
      if (auto s = files.stage(p.compose(), *u.compose_file); !s.ok()) return s;
    if (u.encrypted_env && !u.encrypted_env->empty())
      if (auto s = files.stage(p.encrypted_env(), *u.encrypted_env, 0600); !s.ok()) return s;
    if (u.user_config && !u.user_config->empty())
      if (auto s = files.stage(p.user_config(), *u.user_config); !s.ok()) return s;
    if (auto s = files.stage(p.manifest(), manifest_to_json(m)); !s.ok()) return s;
    if (grow_disk)
      if (auto s = internal::run_command({im.opt.qemu_img, "resize", "-q", p.hda().string(), std::to_string(m.disk_size) + "G"},
                                         "Failed to resize disk");
          !s.ok())
        return s;
    return files.commit();
  }
};

Status VmManager::resize(const std::string& id, std::optional<uint32_t> vcpu, std::optional<uint32_t> memory,
                         std::optional<uint32_t> disk_size, std::optional<std::string> image) {
  VmUpdate u;
  u.id = id;
  u.vcpu = vcpu;
  u.memory = memory;
  u.disk_size = disk_size;
  u.image = std::move(image);
  if (!vcpu && !memory && !disk_size && !u.image) return make_error(ErrorCode::kInvalidArgument, "resize request contains no updates");
  if (u.image && u.image->empty()) return make_error(ErrorCode::kInvalidArgument, "image must not be empty");
  auto r = update(u);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::string> VmManager::update(const VmUpdate& u) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto found = impl_->find(u.id);
  if (!found.ok()) return found.error();
  Vm& vm = **found;
  std::lock_guard op(vm.op);
  Impl::Update up{*impl_, u, vm, impl_->paths(u.id)};
  {
    std::lock_guard lock(impl_->mu);
    if (vm.removing) return make_error(ErrorCode::kFailedPrecondition, "VM is being removed");
    up.m = vm.manifest;
  }
  if (auto s = up.read_compose(); !s.ok()) return s.error();
  if (auto s = up.apply_resources(); !s.ok()) return s.error();
  if (auto s = up.apply_attachments(); !s.ok()) return s.error();
  if (auto s = up.check_tee_inputs(); !s.ok()) return s.error();
  if (u.encrypted_env)
    if (auto s = internal::check_encrypted_env(*u.encrypted_env); !s.ok()) return s.error();
  {
    std::lock_guard lock(impl_->mu);
    if (auto s = impl_->check_gpus_free(up.m); !s.ok()) return s.error();
    if (auto s = impl_->ports.reserve(u.id, up.m.port_map); !s.ok()) return s.error();
  }
  if (auto s = up.write_files(); !s.ok()) return up.undo(s.error());
  {
    std::lock_guard lock(impl_->mu);
    vm.manifest = up.m;
    impl_->listing_moved();
    impl_->forget_files(vm);
  }
  impl_->refresh_cache(u.id, vm);
  return up.new_app_id;
}

}  // namespace dstackvmm
