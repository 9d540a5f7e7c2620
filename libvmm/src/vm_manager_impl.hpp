// SPDX-License-Identifier: Apache-2.0
// VmManager's private state, shared by its two source files.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <dstackvmm/cid_pool.hpp>
#include <dstackvmm/restart_policy.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "guest_channel.hpp"
#include "host_probe.hpp"
#include "job_queue.hpp"
#include "run_command.hpp"
#include "vm_paths.hpp"
#include "vsock_host_api.hpp"

namespace dstackvmm {

// One VM in memory. Fields below `op` are guarded by Impl::mu; `host_api` by `op`.
struct Vm {
  std::mutex op;  // one lifecycle operation (start, stop, remove) at a time
  VmManifest manifest;
  uint32_t cid = 0;
  uint16_t agent_port = 0;
  bool started = false;
  bool removing = false;
  std::string boot_progress, boot_error, shutdown_progress;
  std::deque<GuestEvent> events;
  // Notify's rate limit: a bucket of kNotifyBurst events refilled at kNotifyPerSecond, so a
  // guest cannot make the host write instance.info or churn the event ring without end.
  double notify_tokens = -1;  // < 0: full, not yet used
  uint64_t notify_refilled_ms = 0;
  // Read from disk when they change (load, create, update, start), not on every info().
  std::string image_version;
  bool gateway_enabled = false;
  std::optional<std::string> instance_id;
  std::optional<RestartTracker> restart;  // set once the manager knows the policy
  std::optional<std::string> degraded;    // cleared by the next start or stop
  std::unique_ptr<internal::HostApiListener> host_api;
};

struct VmManager::Impl {
  VmManager* self = nullptr;  // for services that take the public interface (the host API)
  ManagerOptions opt;
  std::shared_ptr<ProcessLauncher> launcher;
  internal::HostRoots roots;
  std::string accel, platform, qemu;
  GuestChannel::Kind channel = GuestChannel::Kind::kVsock;

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Vm>> vms;
  CidPool cids{0, 0};
  PortMapper ports;
  std::set<uint16_t> agent_ports;

  std::unique_ptr<internal::VsockHostApi> vsock_host_api;  // vsock channel only

  std::thread restarter;  // the auto-restart loop
  std::mutex restarter_mu;
  std::condition_variable restarter_cv;
  bool stopping = false;

  internal::JobQueue removals{4};  // background removals; drained on destruction

  uint64_t now_ms() const;
  internal::VmPaths paths(const std::string& id) const { return {opt.config.run_path, id}; }
  Result<std::shared_ptr<Vm>> find(const std::string& id) const;
  bool running(const std::string& id) const;
  std::string host_api_url() const;
  GuestChannel channel_of(const Vm& vm, const internal::VmPaths& p) const;

  Status launch(const std::string& id, Vm& vm);  // caller holds vm.op
  Status ensure_host_api(const std::string& id, Vm& vm);
  Status wait_stopped(const std::string& id, std::chrono::milliseconds timeout) const;
  void finish_remove(const std::string& id, std::shared_ptr<Vm> vm);
  void release(const std::string& id);
  Status check_gpus_free(const VmManifest& m) const;  // caller holds mu
  void start_vsock_host_api();
  // At open: re-adopt VMs whose process runs, start those that should run but do not.
  void recover();
  // VmInfo of one VM given what the launcher says of its process.
  Result<VmInfo> describe(const std::string& id, bool with_files, const std::optional<ProcessInfo>& proc) const;
  void reset_restart(Vm& vm);  // caller holds mu
  // Re-reads the cached facts of a VM from its files; takes mu itself.
  // `versions` memoises image versions by image name across a batch (open, reload).
  void refresh_cache(const std::string& id, Vm& vm, std::map<std::string, std::string>* versions = nullptr);  // frees CID, ports, agent port; drops from memory
  Status handle_notify(const std::string& id, const std::string& event, const std::string& payload);
};

namespace internal {
// A QEMU left running by an earlier daemon for this workdir: its pid file names a live process
// whose command line mentions the workdir (never trusted by name alone).
std::optional<int> orphan_qemu_pid(const VmPaths& paths);
}  // namespace internal

}  // namespace dstackvmm
