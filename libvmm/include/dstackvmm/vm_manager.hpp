// SPDX-License-Identifier: Apache-2.0
// VmManager: create, boot, watch and stop VMs. The one object the daemon and library users drive.
//
// Lifecycle (status is derived, as upstream, from the started flag on disk and whether the
// process runs; `removing` wins over both, and `unknown` is shown while the launcher cannot
// say whether the process runs):
//
//   create --(stopped=false)--> running --stop/shutdown--> stopping --exit--> stopped
//      |                          |  \--process dies on its own--> exited
//      \--(stopped=true)--> stopped --start--> running        remove (any state) --> removing --> gone
//
// Every change of a VM's status is published to subscribers (subscribe()) and wakes waiters
// (wait_for()); the manager learns of process exits from the launcher's wait_change(), so
// nothing polls. docs/architecture.md shows where this sits.
#pragma once

#include <dstackvmm/export.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/gpu_inventory.hpp>
#include <dstackvmm/host_check.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/launch_record.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/port_mapping.hpp>
#include <dstackvmm/process_launcher.hpp>
#include <dstackvmm/qemu_command.hpp>
#include <dstackvmm/qmp_client.hpp>
#include <dstackvmm/vm_activity.hpp>
#include <dstackvmm/vm_info.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm {

// What a start of a VM would run and hand its guest (VmManager::launch_preview).
struct LaunchPreview {
  std::vector<std::string> argv;       // what the launcher runs (QEMU, or the swtpm launcher)
  std::vector<std::string> qemu_argv;  // QEMU's own
  std::string sys_config;              // shared/.sys-config.json, byte for byte
  std::string vm_config;               // the vm_config inside it (what the verifier reads)
  std::optional<std::string> mr_config;      // the MrConfigV3 document, when the VM binds one
  std::optional<std::string> tee_simulator;  // shared/.tee-simulator.json of a simulated TEE
  std::optional<std::string> launch_spec;    // launch.json of a VM with a software TPM
  std::vector<std::string> notices;          // what this start does differently from the config, and why
};

// Whether the manager can do its work now, from what it already knows (no blocking call):
// for health probes.
struct ManagerHealth {
  bool launcher_ok = true;   // the launcher (supervisor) answers
  std::string launcher_error;
  bool state_ok = true;      // run_path is writable and has room
  std::string state_error;
  uint64_t state_free_bytes = 0;
  size_t vms = 0, running = 0;
  bool loading = false;  // folders of stopped VMs are still being read (read_later_above)
  bool ok() const { return launcher_ok && state_ok; }
};

// Counts for metrics, from memory (no file, no launcher call).
struct ManagerStats {
  std::map<std::string, size_t> vms_by_status;       // vm_status_name -> VMs in it
  std::map<std::string, uint64_t> activity_totals;   // journal kind -> entries since open
  std::map<std::string, uint64_t> guest_event_totals; // boot.progress, boot.error, shutdown.progress, instance.info, other
  uint32_t cids_used = 0, cids_total = 0;
  size_t host_ports_used = 0;  // port mappings held
  size_t gpus_used = 0;
  uint64_t guest_panics_dropped = 0;  // kernel panics past the rate limit (one a second per VM)
  uint64_t vms_described = 0;  // VmInfos made in full since open (info, listings): see VmQuery::known
};

// A listing as Status asks for it: filters on what the manager holds in memory, then one page.
// Where a listing stood: the manager's listing revision (new whenever a VM is added, removed,
// reordered or given a new revision) and its clock's second (uptime and exited_at count
// seconds). Two equal stamps mean the same query answers the same.
struct ListingStamp {
  uint64_t revision = 0;
  int64_t second = 0;
  bool operator==(const ListingStamp&) const = default;
};
struct VmQuery {
  std::vector<std::string> ids;  // only these (empty: all)
  std::string keyword;           // a substring of name, id, app_id or image
  uint32_t page = 0;             // 1-based; 0 (or page_size 0) = everything
  uint32_t page_size = 0;
  bool with_files = true;        // compose, env and user config: read for the page's VMs only
  bool with_configuration = true;  // false: VmInfo::configuration left empty (a brief listing)
  // Optional: whether the caller already holds VM `id`'s description at `revision`. Then its
  // VmInfo has only id, revision, uptime and exited_at (the two values that move with the
  // clock): a listing of a thousand unchanged VMs describes none of them again. Called without
  // any lock of the manager's held, once per VM of the page.
  std::function<bool(const std::string& id, uint64_t revision)> known;
  // Optional: the stamp of an earlier answer to this same query. If the listing still stands
  // there, the answer is only `unchanged` (no VM looked at), and the caller sends what it kept.
  std::optional<ListingStamp> unless_changed_since;
};
struct VmPage {
  std::vector<VmInfo> vms;  // by creation time
  size_t total = 0;         // matches before paging
  ListingStamp stamp;       // where the listing stood for this answer
  bool unchanged = false;   // see VmQuery::unless_changed_since: vms and total are empty
};

// What subscribers are told. Callbacks run on the manager's threads, one event at a time and
// in order; they must return quickly and must not call subscribe() or drop a Subscription
// (they may call the manager's const methods).
struct VmEvent {
  enum class Kind {
    kSnapshot,   // on subscribe: the VM's current state, once per VM
    kStatus,     // the status changed
    kLaunching,  // QEMU is about to start: a host-API server should be listening for this VM
    kRemoved,    // the VM is gone (its workdir deleted, its CID free)
    kGuest,      // the guest notified the host (host API Notify): see `guest_event`
  };
  Kind kind = Kind::kStatus;
  std::string id;
  VmStatus status = VmStatus::kStopped;
  uint32_t cid = 0;
  // The user-net channel's per-VM socket that QEMU's guestfwd connects to for the host API;
  // empty on the vsock channel (there a server listens on vsock and names VMs by `cid`).
  std::filesystem::path host_api_socket;
  GuestEvent guest_event;  // kGuest: e.g. {"boot.progress", "done"}
};

// Ends a subscription when destroyed (or reset). Safe to outlive the manager.
class DSTACKVMM_EXPORT Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& other) noexcept : cancel_(std::move(other.cancel_)) { other.cancel_ = nullptr; }
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription() { reset(); }
  // After it returns, the callback is not running and is never called again.
  void reset();

 private:
  std::function<void()> cancel_;
};

struct DSTACKVMM_EXPORT ManagerOptions {
  Config config;
  std::shared_ptr<ProcessLauncher> launcher;  // null: make_direct_launcher()
  // The host, injectable so tests drive the real code on a test root.
  std::filesystem::path sysfs_root = "/sys";
  std::filesystem::path dev_root = "/dev";
  std::filesystem::path proc_root = "/proc";
  std::string qemu_img = "qemu-img";
  // Debian's swtpm, for VMs whose compose asks for the "tpm" key provider (found on PATH
  // when it has no slash, at create and at every start).
  std::string swtpm = "swtpm";
  // A program that runs `<it> vm-launcher --spec FILE` (run_vm_launcher, vm_launcher.hpp): the
  // process that keeps swtpm and QEMU together for a TPM VM. Empty: dstack-vmm, this program
  // itself when it is dstack-vmm, else beside it, else on PATH.
  std::filesystem::path vm_launcher_exe;
  std::function<uint64_t()> now_ms;  // null: the system clock
  std::chrono::milliseconds agent_timeout{5000};
  std::chrono::milliseconds stop_timeout{15000};
  // Run auto_restart_tick() every [cvm.auto_restart] interval on a thread of our own. Off: the
  // embedder calls it (tests do, with `now_ms` as their clock).
  bool auto_restart_thread = true;
  // Run rotate_logs_tick() every [cvm.log] check_interval_secs (when max_bytes > 0).
  bool log_rotation_thread = true;
  // One VM alone (`dstack-vmm run`): only <run_path>/<only_vm> is loaded, nothing else under
  // run_path is looked at or cleaned up, and create() gives the new VM this id.
  std::string only_vm;
  // At open, re-adopt running VMs and start those whose started flag is set. Off: the
  // manager only learns what runs (a dry run starts nothing).
  bool recover = true;
  // Folders of VMs that do not run, beyond this many, are read after open() returns, on a
  // thread of the manager's: a host's history of stopped VMs then does not stand between a
  // restarted daemon and the guests it supervises, which open() re-adopts first. Until they
  // are read (health().loading), listings show the VMs read so far; a call naming a VM not
  // read yet, and every change (create, start, stop, remove, update, reload...), waits for
  // the reading to end. The default reads every folder before open() returns.
  size_t read_later_above = SIZE_MAX;
  // The host-wide CID registry (a JSON file guarded by a lock beside it) shared with every
  // other daemon and one-shot run on this host, so no two VMs anywhere get the same CID.
  // Empty: CIDs are unique among this manager's VMs only.
  std::filesystem::path cid_registry;
  // How many boots' launch records each VM keeps in launch.json.
  size_t launch_records = 8;
  // How many journal entries (activity()) are kept in memory.
  size_t activity_capacity = 4096;
  // Where log lines go (process-wide, see log.hpp): null keeps the current sink (stderr).
  LogSink log_sink;
};

// Thread-safe: every method may be called from any thread at any time. Operations on one VM
// are serialised; a slow one (a stop waiting for QEMU) delays only calls on that VM.
class DSTACKVMM_EXPORT VmManager {
 public:
  // Loads every VM under run_path (the VMs that run first, re-adopted before any other folder
  // is read; see read_later_above). Half-created VMs (no manifest) are removed and unfinished
  // removals completed. Errors: kIo when run_path cannot be created.
  static Result<std::unique_ptr<VmManager>> open(ManagerOptions options);
  // Waits until every folder under run_path is read (see ManagerOptions::read_later_above);
  // false at the deadline.
  bool wait_loaded(std::chrono::steady_clock::time_point deadline) const;
  ~VmManager();
  VmManager(const VmManager&) = delete;
  VmManager& operator=(const VmManager&) = delete;

  // Validates everything (name, image, compose, limits, ports, GPUs, networks), allocates a
  // CID and ports, writes the workdir, and starts the VM unless `stopped`. On any failure
  // nothing is left behind. Returns the new VM's id. Thread-safe.
  Result<std::string> create(VmConfiguration config);
  // Sets the started flag and launches QEMU unless it already runs. "VM is being removed".
  Status start(const std::string& id);
  // Hard stop: clears the started flag and kills QEMU, waiting for it to go.
  Status stop(const std::string& id);
  // Graceful: clears the started flag, asks the guest agent to shut down, falling back to
  // ACPI powerdown over QMP. Returns once asked; the VM then goes stopping -> stopped.
  Status shutdown(const std::string& id);
  // Marks the VM removing and returns; a background task stops it, deletes its workdir and
  // frees its CID and ports. Idempotent.
  Status remove(const std::string& id);
  // Returns the app id computed from a new compose, or "" when the compose did not change.
  Result<std::string> update(const VmUpdate& update);
  // VM must be stopped or exited; disks only grow.
  Status resize(const std::string& id, std::optional<uint32_t> vcpu, std::optional<uint32_t> memory,
                std::optional<uint32_t> disk_size, std::optional<std::string> image);

  // With `with_files` false, configuration holds only what the manifest has (no compose,
  // encrypted env or user config): the cheap form for listings.
  Result<VmInfo> info(const std::string& id, bool with_files = true) const;
  std::vector<VmInfo> list(bool with_files = true) const;  // by creation time
  // Filters and sorts in memory, then describes only the page: its cost follows the page,
  // not the number of VMs.
  VmPage query(const VmQuery& query) const;

  // Host API: a guest's notification (the caller is identified by the channel, never by the body).
  Status notify(const std::string& id, const std::string& event, const std::string& payload);
  // Proxied guest-agent call; returns the agent's JSON.
  Result<std::string> guest_agent_call(const std::string& id, std::string_view method) const;
  // A QMP connection to the VM (needs [cvm] qmp_socket = true).
  Result<std::unique_ptr<QmpClient>> qmp(const std::string& id) const;

  // The argv a start of this VM would run now (what `dstack-vmm run --dry-run` prints): QEMU's,
  // or for a VM with a software TPM the launcher that runs swtpm and QEMU. Decided exactly as
  // start() decides it, with nothing written or started.
  Result<std::vector<std::string>> qemu_command(const std::string& id) const;
  // The same, with what the start would write for the guest (LaunchPreview).
  Result<LaunchPreview> launch_preview(const std::string& id) const;

  // The log file of a channel (see vm_logs.hpp): kNotFound "VM not found", kInvalidArgument
  // "Unknown channel <x>".
  Result<std::filesystem::path> log_path(const std::string& id, std::string_view channel) const;

  Result<ImageListing> images() const;
  // Deletes an image folder: "invalid image name", "cannot delete image '<n>': in use by VM
  // '<vm name>'", "image '<n>' not found".
  Status delete_image(const std::string& name);
  // The KMS's public key for an app's encrypted environment (app id in hex), as the KMS's
  // JSON object text. kFailedPrecondition "KMS is not configured" without kms_url.
  Result<std::string> app_env_encrypt_pub_key(std::string_view app_id_hex) const;
  // Networking modes a create may ask for here: "user", and "bridge" when the host has a
  // bridge (a folder under <sysfs>/class/net/*/bridge, or the configured one).
  std::vector<std::string> supported_network_modes() const;
  // The GPUs [cvm.gpu] offers, as found under the sysfs root now.
  std::vector<PciDevice> offered_gpus() const;

  // The launcher's processes (upstream's SvList/SvStop/SvRemove).
  Result<std::vector<ProcessInfo>> processes() const;
  Status stop_process(const std::string& id);  // a VM's process goes through stop()
  Status remove_process(const std::string& id);

  struct ReloadCounts {
    uint32_t loaded = 0, updated = 0, removed = 0;
  };
  // Re-scans run_path: new folders are loaded, known ones re-read, vanished ones dropped.
  Result<ReloadCounts> reload();

  // One pass of auto-restart ([cvm.auto_restart]): a VM whose process died while its started
  // flag is set is restarted after the backoff; when retries run out it stays exited with a
  // `vmm.auto_restart.exhausted` event. A user's start, stop or remove resets the count.
  void auto_restart_tick();

  // One pass of log rotation ([cvm.log]): each running VM's stdout, stderr and serial logs
  // past max_bytes are rotated (rotate_log). Returns how many files were rotated.
  size_t rotate_logs_tick();

  // Events: `callback` first gets a kSnapshot of every VM, then every change (see VmEvent).
  Subscription subscribe(std::function<void(const VmEvent&)> callback);
  // Waits until the VM's status satisfies `accept` or the deadline passes; returns that
  // status. kNotFound once the VM is gone (so waiting for a removal ends there);
  // kUnavailable "timed out ..." at the deadline, naming the status it was in.
  Result<VmStatus> wait_for(const std::string& id, const std::function<bool(VmStatus)>& accept,
                            std::chrono::steady_clock::time_point deadline) const;
  Result<VmStatus> wait_for(const std::string& id, VmStatus status, std::chrono::steady_clock::time_point deadline) const {
    return wait_for(id, [status](VmStatus s) { return s == status; }, deadline);
  }

  // The journal (vm_activity.hpp): up to `max` entries after `after` (0: from the oldest
  // held), of one VM or, with `vm_id` empty, of all. Waits until there is one or the deadline
  // passes (then returns none): a reader follows with after = the last seq it got.
  VmActivityPage activity(uint64_t after, size_t max, const std::string& vm_id,
                          std::chrono::steady_clock::time_point deadline) const;

  // The launch records of a VM's last boots (launch_record.hpp), oldest first; empty for a
  // VM never started here. The sha256 of a large file may still be "" just after a start.
  Result<std::vector<LaunchRecord>> launches(const std::string& id) const;

  // Counts for /metrics (ManagerStats).
  ManagerStats stats() const;

  // Whether this host can run what the config asks (host_check.hpp). Probes KVM in a child
  // process with a deadline, and the KMS and gateway URLs with a short connect: takes up to
  // a few seconds, so call it from a request or at start-up, not per VM. A stop request ends
  // every probe still running at once (their checks then say so): for a daemon shutting down.
  HostReport check_host(std::stop_token stop = {}) const;

  // Health: the launcher's last answer (from the watch thread's cache) and run_path's state
  // (writable, at least 64 MiB free). Cheap enough for a probe every second.
  ManagerHealth health() const;

  // The guest channel in use (vsock or user-net), as resolved from [cvm] guest_channel.
  GuestChannel::Kind guest_channel() const;

  const Config& config() const;
  const std::filesystem::path& sysfs_root() const;

 private:
  struct Impl;
  explicit VmManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm
