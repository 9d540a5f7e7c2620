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
#include <dstackvmm/launch_record.hpp>
#include <dstackvmm/restart_policy.hpp>
#include <dstackvmm/vm_launcher.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "base/job_queue.hpp"
#include "guest/guest_channel.hpp"
#include "guest/serial_watch.hpp"
#include "process/run_command.hpp"
#include "host/host_probe.hpp"
#include "tee/guest_files.hpp"
#include "allocation/cid_registry.hpp"
#include "vm/disk_templates.hpp"
#include "vm/vm_journal.hpp"
#include "vm/vm_paths.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm {

// One VM in memory. Fields below `op` are guarded by Impl::mu.
namespace internal {
// A new revision: one counter for the whole process, so a VM id is never seen twice at one
// revision, not even across managers.
uint64_t next_revision();
}  // namespace internal

// What a VmInfo shows of the process (and of the launcher's health): note_change() gives the
// VM a new revision when it differs from the last one it saw.
struct ProcessStamp {
  VmStatus status = VmStatus::kStopped;
  bool known = false;
  int state = -1;  // ProcessStatus, -1 without a process
  std::optional<int> pid;
  std::optional<int64_t> started_at, stopped_at;
  uint64_t launcher_error_generation = 0;
  bool operator==(const ProcessStamp&) const = default;
};

struct Vm {
  std::mutex op;  // one lifecycle operation (start, stop, remove) at a time
  // A new one (Impl::touch) whenever anything describe() shows changes: a listing reuses what
  // it holds for a VM at the same revision (VmQuery::known) instead of describing it again.
  // Guarded by mu, as every field below.
  uint64_t revision = internal::next_revision();
  ProcessStamp seen;  // the process as of `revision` (see note_change)
  VmManifest manifest;
  uint32_t cid = 0;
  uint16_t agent_port = 0;
  bool started = false;
  bool removing = false;
  bool creating = false;  // create() has not finished writing the workdir
  bool launching = false; // launch() is starting the process
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
  // The process as the launcher last told (kept current by the watch thread).
  std::optional<ProcessInfo> proc;
  bool proc_known = false;  // false while the launcher cannot answer: status is kUnknown
  // Read by the background loader (read_later_above), which set `proc` from the launcher's
  // table it read first: listings show that while `loading`, not kUnknown. proc_known stays
  // false, so calls naming the VM still wait for learn_processes() to apply the table.
  bool proc_from_loader = false;
  // Whether the launcher may still hold an entry for it (to remove with the VM): when it last
  // answered it had one, or it has not answered.
  bool launcher_may_hold() const { return !proc_known || proc.has_value(); }
  uint64_t fresh_as_of = 0;  // Impl::direct_updates when `proc` was last set from a direct answer
  VmStatus status = VmStatus::kStopped;  // as last published
  // describe()'s interfaces, kept while the manifest's networks are the ones they were made
  // of (each MAC is a SHA-256 of the id: not worth redoing for every VM of every listing).
  mutable std::optional<std::vector<NetworkSpec>> interfaces_from;
  mutable std::vector<NetworkInterfaceStatus> interfaces;
  uint64_t panic_reported_ms = 0;  // the last kernel panic taken (on_guest_panic's rate limit)
  // describe()'s compose, env and user config: read once, kept until the engine writes them
  // (create and update are their only writers) so that a full listing opens no file. Null:
  // not read yet, or over the manager's budget. files_generation counts the writes, so that
  // a read that raced one is not kept.
  mutable std::shared_ptr<const internal::ConfigurationFiles> files;
  mutable uint64_t files_generation = 0;
  // What the running process was started with (set by the start; unknown for a VM re-adopted
  // after a restart of the daemon): what changed since is pending until the next start.
  std::optional<VmManifest> booted;
  uint64_t booted_files_generation = 0;
};

// What Vm::proc keeps of a launcher's entry: its state (status, pid, times, error) and id,
// not the spec (argv, environment), which the manager does not read back and which, for a
// thousand VMs that ran once, was most of the daemon's memory.
inline std::optional<ProcessInfo> process_state(std::optional<ProcessInfo> p) {
  if (p) {
    ProcessSpec spec;
    spec.id = std::move(p->spec.id);
    p->spec = std::move(spec);
  }
  return p;
}

// A whole table as changes(0) gives it: its entries (moved out; the generation stays), or
// why there are none.
inline Result<std::vector<ProcessInfo>> entries_of(Result<ProcessChanges>& table) {
  if (!table.ok()) return table.error();
  return std::move(table->changed);
}

// What a start runs and writes, decided before anything is written (plan_launch).
struct LaunchPlan {
  QemuInputs inputs;
  std::vector<std::string> argv;          // QEMU's
  std::vector<std::string> process_argv;  // what the launcher runs: argv, or the swtpm launcher
  std::optional<LaunchSpec> launch_spec;  // a TPM VM's launch.json
  internal::GuestFiles guest;             // shared/: .sys-config.json and the rest
  // What this start does differently from what the config asks, and why (not an error: e.g.
  // an image that predates a feature the host enables for every VM). Shown as VM events.
  std::vector<std::string> notices;
};

// What happened to a VM, as VmManager::Impl::transition() takes it: the one way its lifecycle
// state (started, launching, removing, creating, the guest's progress) changes.
struct VmTransition {
  enum class Kind {
    kLaunching,      // QEMU is about to start
    kLaunchFailed,   // it did not
    kStarted,        // it runs: `proc` as the launcher said, `shared_ro` the image's, `already` running before
    kStopAsked,      // a user's stop
    kShutdownAsked,  // a user's shutdown, or the guest powering off
    kRemoving,       // a removal began
    kAdopted,        // re-adopted, running since before this daemon started
    kCreated,        // its workdir is complete
    kGuestReport,    // `event` with `payload` from the guest (boot.progress, boot.error, shutdown.progress)
  };
  Kind kind;
  const Result<std::optional<ProcessInfo>>* proc = nullptr;
  bool shared_ro = false, already = false;
  std::string event, payload;
};

// Subscribers and the order of delivery; shared with Subscriptions so that one may outlive
// the manager.
struct EventHub {
  std::mutex deliver_mu;  // held while a callback runs: events go out one at a time, in order
  std::map<uint64_t, std::function<void(const VmEvent&)>> subscribers;  // guarded by deliver_mu
  uint64_t next_id = 1;
};

struct DSTACKVMM_HIDDEN VmManager::Impl {
  // Shared by the manager and its watch thread, which may be blocked in the launcher's
  // wait_change() when the manager goes: the thread is then left to finish on its own, and
  // touches nothing of the manager once `impl` is null.
  struct WatchLink {
    std::mutex mu;  // held while the thread uses impl
    std::condition_variable cv;
    Impl* impl = nullptr;
  };

  ManagerOptions opt;
  std::shared_ptr<ProcessLauncher> launcher;
  internal::HostRoots roots;
  Accel accel = Accel::kTcg;
  Platform platform = Platform::kNone;
  std::string qemu;
  GuestChannel::Kind channel = GuestChannel::Kind::kVsock;

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Vm>> vms;
  // vms in a listing's order (creation time, then id), remade by ordered() after a VM came or
  // went or its manifest was replaced (order_stale), so that a listing neither walks the map
  // nor sorts it. Guarded by mu.
  using VmEntry = std::pair<const std::string, std::shared_ptr<Vm>>;
  mutable std::vector<const VmEntry*> order;
  mutable bool order_stale = true;
  // Guarded by mu: made new (next_revision) by every change a listing could show: a VM's new
  // revision (touch) and a VM added, removed or moved (listing_moved). See ListingStamp.
  mutable uint64_t listing_revision = internal::next_revision();
  void listing_moved() const;  // order_stale, and a new listing revision; caller holds mu
  const std::vector<const VmEntry*>& ordered() const;  // caller holds mu
  static bool listed_before(const VmEntry* a, const VmEntry* b);  // creation time, then id
  CidPool cids{0, 0};
  std::optional<internal::CidRegistry> cid_registry;  // ManagerOptions::cid_registry, when set
  // The lowest free CID for a new VM `vm`, in this manager and, with the registry, host-wide.
  // Caller holds no lock of ours (the registry's file lock is never taken under mu).
  Result<uint32_t> allocate_cid(const std::string& vm);
  // The host-wide registry's entries for VMs just loaded, in one locked write (open, reload).
  void claim_cids(const std::vector<std::string>& ids);
  PortMapper ports;
  std::set<uint16_t> agent_ports;

  // Status changes, in the order they happened; appended under mu, sent by flush().
  std::deque<VmEvent> pending;
  std::shared_ptr<EventHub> hub = std::make_shared<EventHub>();
  mutable std::condition_variable changed_cv;  // with mu: any VM's status or process changed
  std::string launcher_error;                  // guarded by mu; why statuses are unknown
  // What happened, for activity() readers (who wait on changed_cv); guarded by mu. Off until
  // open() has learnt what runs, so a daemon's start-up is not told as VMs starting.
  internal::ActivityJournal journal{0, 1};
  bool journal_on = false;
  // Appends to the journal (stamping the time) and wakes readers; caller holds mu.
  void record(VmActivity a);

  // ManagerOptions::read_later_above: the thread reading the folders open() left, and
  // whether it still does (guarded by mu; loaded_cv says when it ends). `load_cancel`: the
  // manager goes, the reading stops early.
  std::thread loader;
  bool loading = false;
  mutable std::condition_variable loaded_cv;
  std::atomic<bool> load_cancel{false};
  // Returns once no folder is left to read (at once when none is); caller holds no lock of ours.
  void wait_loaded() const;

  std::thread restarter;  // the auto-restart loop
  std::thread rotator;    // the [cvm.log] rotation loop (shares restarter_mu/cv/stopping)
  std::mutex restarter_mu;
  std::condition_variable restarter_cv;
  bool stopping = false;

  // Background removals; drained on destruction. Their threads stay a second after the last
  // job, so that a burst's RemoveVm calls do not each start one (a thread's start was a third
  // of the call's time in the daemon).
  internal::JobQueue removals{4, 0, std::chrono::milliseconds(1000)};
  // A VM removed at once has its folder deleted once the burst it came in ends (kRemovalQuiet
  // without another such removal, or kRemovalMaxDelay after its own): the unlinks' kernel
  // work then takes no CPU from the burst's calls, and the total work is the same.
  static constexpr std::chrono::milliseconds kRemovalQuiet{20}, kRemovalMaxDelay{1000};
  std::mutex removal_quiet_mu;
  std::condition_variable removal_quiet_cv;
  std::chrono::steady_clock::time_point last_removal;  // guarded by removal_quiet_mu
  bool removals_now = false;                            // the manager goes: no more waiting
  void wait_removal_quiet(std::chrono::steady_clock::time_point posted);
  // CIDs of removed VMs still to be given back to the host-wide registry: a burst of removals
  // gives them back in one change of the file (each change rewrites the whole registry),
  // made once no release came for kRegistryQuiet and no removal that stops a process is
  // queued or under way, or kRegistryMaxDelay after the first one waiting, or when the
  // manager goes. (A quiet spell alone split a slow burst: under a sanitizer or on a busy
  // host one process's stop can take longer than it.)
  static constexpr std::chrono::milliseconds kRegistryQuiet{20}, kRegistryMaxDelay{250};
  std::mutex registry_release_mu;
  std::condition_variable registry_release_cv;
  // Guarded by registry_release_mu:
  std::vector<std::pair<uint32_t, std::string>> registry_releases;
  std::chrono::steady_clock::time_point registry_release_first, registry_release_last;
  bool registry_flush_queued = false;  // a flush job waits for the burst to end
  bool registry_flush_now = false;     // the manager goes: no more waiting
  size_t stopping_removals = 0;        // finish_remove jobs posted and not done
  void release_registry_cid(uint32_t cid, const std::string& id);
  void flush_registry_releases();
  internal::JobQueue registry_flusher{1};  // the flush job's thread, there only while one waits
  std::unique_ptr<internal::DiskTemplates> disks;  // empty disks without a backing image

  // Vm::files, all VMs together: at most kFilesCacheBytes are kept (the rest are read per call).
  static constexpr size_t kFilesCacheBytes = 8 << 20;
  mutable size_t files_cached_bytes = 0;  // guarded by mu
  // The VM's files, from memory when kept; reads them (without mu) otherwise.
  internal::ConfigurationFiles files_of(const std::string& id, const Vm& vm) const;
  // They were just written, or the VM goes: a new revision too. Caller holds mu.
  void forget_files(Vm& vm) const;

  uint64_t now_ms() const;
  internal::VmPaths paths(const std::string& id) const { return {opt.config.run_path, id}; }
  Result<std::shared_ptr<Vm>> find(const std::string& id) const;
  // Whether a call naming VM `id` must wait for the background loader: its folder may not be
  // read yet, or is read but its process not yet learnt (the loader learns every process
  // once it has read every folder). Caller holds mu.
  bool unsettled(const std::string& id) const;
  // What the cache says (kept current by the watch thread); nullopt while unknown.
  std::optional<bool> running(const std::string& id) const;
  // kFailedPrecondition "VM <id> is not running", kUnavailable while unknown.
  Status check_running(const std::string& id) const;
  VmStatus status_of(const Vm& vm) const;  // caller holds mu
  // Recomputes the VM's status and queues an event if it changed; caller holds mu. Then the
  // caller calls flush() once it has released mu.
  void note_change(const std::string& id, Vm& vm);
  // Gives the VM a new revision: whatever changes what describe() shows calls it (transition,
  // note_change, add_event and the few writers of manifest, files and degraded). Caller holds mu.
  void touch(Vm& vm) const;
  // A VM event kept in its ring (at most event_buffer_size); caller holds mu.
  void add_event(Vm& vm, GuestEvent e);
  uint64_t launcher_error_generation = 0;  // guarded by mu: counts changes of launcher_error
  mutable uint64_t described = 0;          // guarded by mu: VMs described in full (ManagerStats)
  // The one place a VM's lifecycle state changes (vm_state.cpp); then note_change(). Caller
  // holds mu, and calls flush() once it has released it.
  void transition(const std::string& id, Vm& vm, const VmTransition& t);
  void queue(VmEvent e);  // caller holds mu
  VmEvent snapshot_of(const std::string& id, const Vm& vm) const;  // a kSnapshot of it; caller holds mu
  void flush();           // delivers queued events; caller holds no lock of ours
  // Puts the launcher's answer into the cache (error: every VM unknown) and publishes.
  // A table or delta asked for when direct_updates was `asked_at` may be older than a VM's
  // later direct answer (launch() asks launcher->info() itself): such VMs are left as they are,
  // and the call says so (true).
  bool apply_processes(const Result<std::vector<ProcessInfo>>& procs, uint64_t asked_at = UINT64_MAX);
  void apply_process(const std::string& id, const Result<std::optional<ProcessInfo>>& proc);
  bool apply_changes(const ProcessChanges& changes, uint64_t asked_at);  // a delta, as apply_processes
  uint64_t direct_updates = 0;  // guarded by mu: counts direct answers about one VM's process
  uint64_t updates_now() const;  // direct_updates, under mu
  std::shared_ptr<WatchLink> watch_link = std::make_shared<WatchLink>();
  std::thread watcher;
  // The watch thread: learns every process change from launcher->watch_changes().
  // `generation`: what recover() read the table at (0: unknown, the thread reads it whole).
  static void watch_processes(std::shared_ptr<WatchLink> link, std::shared_ptr<ProcessLauncher> launcher, uint64_t generation);
  uint64_t table_generation = 0;  // guarded by mu; see recover()
  // What a complete workdir says of its VM, read without mu (load_vm's first half).
  struct VmFolder {
    VmManifest manifest;
    bool started = false;
    std::optional<internal::VmRuntime> runtime;
  };
  Result<VmFolder> read_folder(const std::string& id) const;
  // The in-memory VM of a folder read (load_vm's second half); caller holds mu. Its CID: the
  // one its launcher entry (the supervisor's, maybe upstream's) was started with, else
  // vm-runtime.json's, else a new one.
  Result<std::shared_ptr<Vm>> add_vm(const std::string& id, VmFolder folder);
  // Both halves (open and reload share it); caller holds mu.
  Result<std::shared_ptr<Vm>> load_vm(const std::string& id);
  // CIDs of the launcher's VM entries, by id (launcher_cids_from): what load_vm prefers.
  std::map<std::string, uint32_t> launcher_cids;
  std::string host_api_url() const;
  GuestChannel channel_of(const Vm& vm, const internal::VmPaths& p) const;

  // Caller holds vm.op. `fresh`: the VM's folder was made by this call's create, under an
  // id made here, so no launcher can hold a process of it and none is asked.
  Status launch(const std::string& id, Vm& vm, bool fresh = false);
  struct Launch;  // one start, step by step (vm_launch.cpp)
  struct Create;  // create()'s steps (vm_create.cpp)
  struct Update;  // update()'s steps (vm_update.cpp)
  struct Opening;  // open()'s steps (vm_open.cpp)
  // What the guest reads in shared/ (and a TPM VM's launch.json), from the plan.
  Status write_guest_files(const internal::VmPaths& p, const LaunchPlan& plan);
  // The argv and facts of a start, with no side effect; launch() and qemu_command() share it.
  // `image` is the manifest's, loaded by the caller (launch() needs it before the plan).
  Result<LaunchPlan> plan_launch(const std::string& id, const VmManifest& manifest, const Image& image) const;
  // The shared/ files of a start (prepare_guest_files over what the VM's folder and image hold).
  Result<internal::GuestFiles> plan_guest_files(const std::string& id, const VmManifest& manifest, const Image& image,
                                                uint32_t cpu_count, size_t num_nics,
                                                const std::optional<std::string>& qemu_version) const;
  // What every plan of a VM's shared/ files takes the same way (config, platform, image).
  internal::GuestFileInputs guest_inputs(const VmManifest& manifest, const Image& image,
                                         const internal::MeasurementMaterial& material, std::string compose,
                                         const internal::ComposeFacts& facts) const;
  // [cvm] qemu_version, else what the binary says (asked once per binary); a failure is
  // logged and, for a TEE VM, added to `notices`.
  std::optional<std::string> qemu_version_for_guest(bool tee, std::vector<std::string>* notices) const;
  Result<std::string> swtpm_program() const;                     // ManagerOptions::swtpm, found
  Result<std::filesystem::path> vm_launcher_program() const;    // ManagerOptions::vm_launcher_exe, found
  // Each bridge NIC names a valid interface that exists under <sysfs>/class/net.
  Status check_bridges(const std::vector<NetworkSpec>& resolved) const;
  // Waits until the VM's process is known not to run, then makes sure no QEMU of an earlier
  // daemon or supervisor still runs for its workdir (killing it). kQemu when one survives.
  Status wait_stopped(const std::string& id, std::chrono::milliseconds timeout) const;
  void finish_remove(const std::string& id, std::shared_ptr<Vm> vm);  // stops its process, then deletes and releases
  void post_finish_remove(const std::string& id, std::shared_ptr<Vm> vm);  // on `removals`, counted
  // The launcher's entry (if it has one) and the folder of a VM that runs nothing.
  void delete_removed(const std::string& id, bool has_entry);
  // The launcher's stop, after a SIGTERM (and up to 10 s) for a swtpm launcher, which then
  // ends QEMU and swtpm itself.
  Status stop_process(const std::string& id);
  void release(const std::string& id);  // frees CID, ports, agent port; drops from memory; publishes kRemoved
  Status check_gpus_free(const VmManifest& m) const;  // caller holds mu
  // What a start of `m` would refuse, asked at create and update (the shared/ files are
  // planned and thrown away): a key provider id with use_mrconfigid off, lite or a simulated
  // TEE without the image's material, a TPM without swtpm.
  Status preflight(const VmManifest& m, const Image& image, const std::string& compose, const internal::ComposeFacts& facts) const;
  // Requested NICs checked and merged over [cvm.networking] (empty stays empty: node default).
  Result<std::vector<NetworkSpec>> resolve_requested_networks(const std::vector<NetworkSpec>& requested) const;
  // At open: re-adopt VMs whose process runs, start those that should run but do not.
  // `table`: the launcher's table as open() already read it (asked again when absent).
  // kRunning: only re-adopts the VMs loaded so far whose process runs (open() loads those
  // first), naming them in `adopted`; nothing is cleaned up or started. kRest: the rest, the
  // VMs in `adopted` left alone.
  enum class RecoverStep { kAll, kRunning, kRest };
  void recover(std::optional<Result<ProcessChanges>> table = std::nullopt, RecoverStep step = RecoverStep::kAll,
               std::set<std::string>* adopted = nullptr);
  void remember_launcher_cids(const Result<ProcessChanges>& table);  // into launcher_cids
  Status rescan(std::set<std::string>& on_disk, std::vector<std::string>& loaded, ReloadCounts& counts, std::error_code& ec);
  std::set<std::string> running_vms(const std::vector<ProcessInfo>& procs, const std::set<std::string>& known);
  void adopt(const std::string& id, Vm& vm);  // caller holds vm.op
  // VmInfo of one VM from the cache (no launcher call; files read outside mu).
  Result<VmInfo> describe(const std::string& id, bool with_files) const;
  // vm: vms[id], held by the caller. !with_configuration: a brief listing's, without it.
  VmInfo describe(const std::string& id, const Vm& vm, bool with_files, bool with_configuration = true) const;
  std::vector<NetworkInterfaceStatus> interfaces_of(const std::string& id, const std::vector<NetworkSpec>& requested) const;
  void reset_restart(Vm& vm);  // caller holds mu
  // auto_restart_tick()'s two halves: the decision for one VM, and the restart.
  RestartDecision judge_restart(const std::string& id, Vm& vm, uint64_t now_s);
  void restart(const std::string& id, Vm& vm, uint32_t attempt);
  // Re-reads the cached facts of a VM from its files; takes mu itself.
  // `versions` memoises image versions by image name across a batch (open, reload).
  void refresh_cache(const std::string& id, Vm& vm, std::map<std::string, std::string>* versions = nullptr);
  Status handle_notify(const std::string& id, const std::string& event, const std::string& payload);

  // launch.json (vm_launch_record.cpp): a start's record, then its exit. Both only post a job
  // to record_jobs, so they may be called holding any lock.
  void record_launch(const std::string& id, const LaunchPlan& plan, uint64_t time_ms);
  void store_launch_record(const std::string& id, const std::filesystem::path& file, const LaunchRecord& r, size_t keep,
                           const std::vector<std::string>& to_hash);
  void record_exit(const std::string& id, const VmActivity& exit);
  void record_panic(const std::string& id, const LaunchPanic& panic);
  // Kernel panics on the guests' serial consoles (guest/serial_watch.hpp), followed from each
  // start or re-adoption until the VM is removed. Reset first when the manager goes.
  std::unique_ptr<internal::SerialWatch> serial_watch;
  void follow_serial(const std::string& id);  // logs, once, when it cannot
  bool serial_watch_failed = false;           // guarded by mu
  // A panic: journal entry "panicked", a VM event, and the launch record (vm_guest_panic.cpp).
  void on_guest_panic(const std::string& id, internal::GuestPanic panic);
  // Held while a job writes a launch.json, and while a removal deletes a workdir: a job never
  // writes into a folder being deleted (which would leave it behind), and skips removed VMs.
  std::mutex records_mu;
  bool may_record(const std::string& id) const;  // the VM exists and is not being removed
  std::mutex hash_mu;  // guards hash_cache
  std::map<std::string, std::pair<std::string, std::string>> hash_cache;  // path -> (size:mtime, sha256)
  // Counts for stats(), kept by record(); guarded by mu.
  std::map<std::string, uint64_t> activity_totals, guest_event_totals;
  uint64_t guest_panics_dropped = 0;
  // Declared last, so it is drained (its jobs finished) before any member they use goes.
  internal::JobQueue record_jobs{1};
};

namespace internal {
// Upstream's ProcessAnnotation rule: an entry is a VM's when its note's live_for is null and
// its kind is "" or "cvm" (an unparsable or empty note counts as a VM's, as upstream reads it).
bool is_vm_process(const std::string& note);
// A QEMU left running by an earlier daemon for this workdir: its pid file names a live process
// whose command line mentions the workdir (never trusted by name alone).
std::optional<int> orphan_qemu_pid(const VmPaths& paths);
// Launch records an earlier daemon kept in launch.json (upstream's swtpm launch spec's name)
// move to launch-history.json; a launch.json that is upstream's spec is left alone.
void migrate_launch_records(const VmPaths& paths);
// Kills a pid found by orphan_qemu_pid and waits for it to go, up to `timeout`.
bool kill_and_wait(int pid, std::chrono::milliseconds timeout);
}  // namespace internal

}  // namespace dstackvmm
