// SPDX-License-Identifier: Apache-2.0
// VmManager: images, GPUs, processes and logs as the API exposes them.
#include <dstackvmm/vm_manager.hpp>

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <dstackvmm/image.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_logs.hpp>

#include "base/fs_util.hpp"
#include "kms/kms_client.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

Status VmManager::delete_image(const std::string& name) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  if (!validate_image_name(name).ok())  // before any filesystem call
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid image name: an image id is one folder name of letters, digits, '.', '_' and '-', "
                      "not starting with '.'");
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [id, vm] : impl_->vms)
      if (vm->manifest.image == name)
        return make_error(ErrorCode::kFailedPrecondition,
                          "cannot delete image '" + name + "': in use by VM '" + vm->manifest.name + "'");
  }
  auto dir = std::filesystem::path(impl_->opt.config.image.path) / name;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return make_error(ErrorCode::kNotFound, "image '" + name + "' not found");
  return internal::remove_tree(dir);
}

Result<std::filesystem::path> VmManager::log_path(const std::string& id, std::string_view channel) const {
  if (auto vm = impl_->find(id); !vm.ok()) return make_error(ErrorCode::kNotFound, "VM not found");
  std::string file = log_file_name(channel);
  if (file.empty()) return make_error(ErrorCode::kInvalidArgument, "Unknown channel " + std::string(channel));
  return impl_->paths(id).dir / file;
}

Result<std::string> VmManager::app_env_encrypt_pub_key(std::string_view app_id_hex) const {
  return internal::kms_app_env_encrypt_pub_key(impl_->opt.config.kms_url, app_id_hex);
}

ManagerHealth VmManager::health() const {
  ManagerHealth h;
  {
    std::lock_guard lock(impl_->mu);
    h.launcher_error = impl_->launcher_error;
    h.launcher_ok = h.launcher_error.empty();
    h.vms = impl_->vms.size();
    h.loading = impl_->loading;
    for (const auto& [id, vm] : impl_->vms) h.running += vm->proc && vm->proc->status == ProcessStatus::kRunning;
  }
  const std::string& run = impl_->opt.config.run_path;
  struct statvfs fs {};
  if (::access(run.c_str(), W_OK) != 0) {
    h.state_ok = false;
    h.state_error = std::string("the VM folder is not writable: ") + std::strerror(errno);
  } else if (::statvfs(run.c_str(), &fs) != 0) {
    h.state_ok = false;
    h.state_error = std::string("cannot tell the VM folder's free space: ") + std::strerror(errno);
  } else {
    h.state_free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
    if (h.state_free_bytes < (64u << 20)) {
      h.state_ok = false;
      h.state_error = "the VM folder's file system has less than 64 MiB free";
    }
  }
  return h;
}

size_t VmManager::rotate_logs_tick() {
  const auto& rotation = impl_->opt.config.cvm.log;
  if (rotation.max_bytes == 0) return 0;
  std::vector<std::string> running;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [id, vm] : impl_->vms)
      if (vm->proc && vm->proc->status == ProcessStatus::kRunning) running.push_back(id);
  }
  size_t rotated = 0;
  std::string stamp = rfc3339_utc(impl_->now_ms() / 1000);
  for (const auto& id : running) {
    auto p = impl_->paths(id);
    // Every VM here is launched with serial logappend (the note says so), so serial.log is ours to rotate too.
    for (const auto& log : {p.stdout_log(), p.stderr_log(), p.serial_log()}) {
      std::error_code ec;
      auto size = std::filesystem::file_size(log, ec);
      if (ec || size <= rotation.max_bytes) continue;
      // QEMU writes on: the blocks cut from the start go, whatever it appends stays.
      uint64_t moved = 0;
      auto r = rotate_live_log(log, rotation.max_backups, stamp, &moved);
      if (!r.ok()) log_message(LogLevel::kWarn, "vmm", "VM " + id + ": " + r.error().message);
      else rotated += *r;
      if (r.ok() && *r && log == p.serial_log() && impl_->serial_watch) impl_->serial_watch->shifted(id, moved);
    }
  }
  return rotated;
}

std::vector<std::string> VmManager::supported_network_modes() const {
  const auto& net = impl_->opt.config.cvm.networking;
  std::vector<std::string> modes{"user"};
  std::error_code ec;
  auto sysfs = impl_->opt.sysfs_root;
  bool bridge_ok = !net.bridge.empty() && std::filesystem::exists(sysfs / "class/net" / net.bridge, ec);
  for (const auto& e : std::filesystem::directory_iterator(sysfs / "class/net", ec))
    bridge_ok = bridge_ok || std::filesystem::exists(e.path() / "bridge", ec);
  if (bridge_ok) modes.push_back("bridge");
  return modes;
}

std::vector<PciDevice> VmManager::offered_gpus() const {
  return GpuInventory::discover(impl_->opt.sysfs_root).offered(impl_->opt.config.cvm.gpu);
}

Result<std::vector<ProcessInfo>> VmManager::processes() const { return impl_->launcher->list(); }

Status VmManager::stop_process(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  auto proc = impl_->launcher->info(id);
  if (!proc.ok()) return proc.error();
  if (!*proc) return make_error(ErrorCode::kNotFound, "Supervisor process not found");
  if (impl_->find(id).ok()) return stop(id);
  return impl_->launcher->stop(id);
}

Status VmManager::remove_process(const std::string& id) {
  impl_->wait_loaded();  // a change waits for every VM to be read (read_later_above)
  return impl_->launcher->remove(id);
}

}  // namespace dstackvmm
