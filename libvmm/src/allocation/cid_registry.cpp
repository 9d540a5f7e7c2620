// SPDX-License-Identifier: Apache-2.0
#include "allocation/cid_registry.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fs_util.hpp"
#include "base/json_limits.hpp"

namespace dstackvmm::internal {

struct CidRegistryCache {
  std::mutex mu;     // held for a whole change, with the flock
  std::string text;  // the file as this process last read or wrote it ("" = unknown)
  nlohmann::json doc;  // parsed from `text`
};

namespace {

using nlohmann::json;
constexpr size_t kMaxFile = 16u << 20;

// A process's start time (field 22 of /proc/<pid>/stat), which tells a pid that was reused
// from the one recorded; "" when the process does not exist.
std::string start_time(const std::filesystem::path& proc, int pid) {
  std::string stat = read_attribute(proc / std::to_string(pid) / "stat", 4096);
  auto close = stat.rfind(')');  // the name may hold spaces and parentheses
  if (close == std::string::npos) return "";
  size_t field = 3, at = close + 1;  // at: the space before field `field`
  while (field < 22 && at < stat.size()) {
    at = stat.find(' ', at + 1);
    if (at == std::string::npos) return "";
    ++field;
  }
  auto end = stat.find(' ', at + 1);
  return stat.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

json holder(const std::filesystem::path& proc, int pid) { return {{"pid", pid}, {"start", start_time(proc, pid)}}; }

std::string text_of(const json& entry, const char* key) {
  if (!entry.is_object()) return "";
  auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : "";
}

// One holder {pid, start} whose process still runs (the same pid and start time). `seen`
// remembers start times for a pass over many entries (most share the daemon's pid).
bool holder_lives(const std::filesystem::path& proc, const json& h, std::map<int, std::string>* seen = nullptr) {
  if (!h.is_object() || !h.contains("pid") || !h["pid"].is_number_integer()) return false;
  int pid = h["pid"].get<int>();
  std::string now;
  if (auto it = seen ? seen->find(pid) : std::map<int, std::string>::iterator{}; seen && it != seen->end()) now = it->second;
  else if (now = start_time(proc, pid); seen) (*seen)[pid] = now;
  return !now.empty() && h.contains("start") && h["start"].is_string() && h["start"].get<std::string>() == now;
}

bool lives(const std::filesystem::path& proc, const json& entry, std::map<int, std::string>* seen = nullptr) {
  if (!entry.is_object() || !entry.contains("holders") || !entry["holders"].is_array()) return false;
  for (const auto& h : entry["holders"])
    if (holder_lives(proc, h, seen)) return true;
  return false;
}

// Opens `path` for reading or locking without following a symlink at it and without
// blocking on a FIFO there; it must be a regular file. -1 with `why` set otherwise (a missing
// file only when !create; then `why` stays empty).
int open_plain(const std::filesystem::path& path, bool create, std::string* why) {
  int fd = ::open(path.c_str(), (create ? O_CREAT | O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == ENOENT && !create) return -1;
    *why = errno == ELOOP ? path.string() + " is a symlink, which the CID registry never follows; remove it"
                          : "cannot open " + path.string() + ": " + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    *why = path.string() + " is not a regular file; remove it";
    return -1;
  }
  return fd;
}

// The registry, read and written under its lock for the length of one change. The parsed
// document is kept between changes: when the file still holds the very bytes this process
// last read or wrote, it is not parsed again (reading it is cheap; parsing a thousand
// entries is not, and would make every start and removal cost more as VMs are added).
// Fails closed: a registry that cannot be read as one is left as it is and every change is
// refused, naming it, rather than replaced by one that forgets other VMMs' CIDs.
class Locked {
 public:
  Locked(const std::filesystem::path& file, CidRegistryCache& cache) : file_(file), cache_(cache), hold_(cache.mu) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    std::string lock = file.string() + ".lock";
    fd_ = open_plain(lock, true, &error_);
    if (fd_ < 0) return;
    // flock has no way to wait with a deadline, nor to be told when it is free: it is asked
    // again with a growing pause, for up to kLockWait.
    auto deadline = std::chrono::steady_clock::now() + kLockWait;
    for (int pause_ms = 1; ::flock(fd_, LOCK_EX | LOCK_NB) != 0; pause_ms = std::min(pause_ms * 2, 50)) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        error_ = "cannot lock the CID registry: " + std::string(std::strerror(errno));
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        error_ = "the CID registry lock " + lock + " has been held by another process for over " +
                 std::to_string(kLockWait.count()) + " ms; try again, or find what holds it (fuser " + lock + ")";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    std::string now;
    int data = open_plain(file, false, &error_);
    if (data < 0 && !error_.empty()) return;
    if (data >= 0) {
      struct stat st {};
      ::fstat(data, &st);
      if (static_cast<uint64_t>(st.st_size) > kMaxFile) {
        ::close(data);
        error_ = "the CID registry " + file.string() + " is larger than 16 MiB; move it aside (the VMMs claim their CIDs again when they restart)";
        return;
      }
      now.resize(static_cast<size_t>(st.st_size));
      ssize_t n = ::pread(data, now.data(), now.size(), 0);
      ::close(data);
      now.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    if (cache_.text.empty() || now != cache_.text) {
      if (now.empty()) {
        cache_.doc = {{"version", 1}, {"cids", json::object()}};
      } else {
        cache_.doc = parse_json(now, {kMaxFile, 8});
        if (!cache_.doc.is_object() || !cache_.doc.contains("cids") || !cache_.doc["cids"].is_object()) {
          cache_.text.clear();
          error_ = "the CID registry " + file.string() + " is not a registry (corrupt or not JSON); it is left as it is and no CID "
                   "is handed out until it is moved aside (every VMM claims its CIDs again when it restarts)";
          return;
        }
      }
      cache_.text = now;
    }
  }
  ~Locked() {
    if (!kept_) cache_.text.clear();  // changed in memory but not on disk: read it again next time
    if (fd_ >= 0) ::close(fd_);       // closing releases the flock
  }
  const std::string& error() const { return error_; }
  json& cids() { return cache_.doc["cids"]; }
  void unchanged() { kept_ = true; }
  // Compact, its dead entries dropped (free to anyone anyway), and never past its own cap.
  // Not synced: every manager claims its VMs' CIDs again when it opens, so a write lost in a
  // crash is made good then; a start should not wait on the disk for it.
  Status save(const std::filesystem::path& proc) {
    json& all = cids();
    std::map<int, std::string> seen;
    for (auto it = all.begin(); it != all.end();) it = lives(proc, *it, &seen) ? std::next(it) : all.erase(it);
    std::string text = cache_.doc.dump();
    if (text.size() > kMaxFile)
      return make_error(ErrorCode::kResourceExhausted, "the CID registry " + file_.string() + " would grow past 16 MiB");
    auto s = replace_file(file_, text, 0600);
    if (s.ok()) cache_.text = std::move(text), kept_ = true;
    return s;
  }

 private:
  static constexpr std::chrono::milliseconds kLockWait{2000};
  std::filesystem::path file_;
  CidRegistryCache& cache_;
  std::unique_lock<std::mutex> hold_;  // the cache is this process's: one change at a time
  int fd_ = -1;
  std::string error_;
  bool kept_ = false;
};

}  // namespace

CidRegistry::CidRegistry(std::filesystem::path file, std::string owner, uint32_t start, uint32_t size, std::filesystem::path proc_root)
    : file_(std::move(file)), owner_(std::move(owner)), start_(start), end_(uint64_t{start} + size), proc_(std::move(proc_root)),
      cache_(std::make_unique<CidRegistryCache>()) {}

CidRegistry::~CidRegistry() = default;

namespace {

// One reservation inside a locked registry. `changed` is set when the entry had to be written
// (an entry already ours, held by this process, is left as it is: no write for a re-check).
Result<uint32_t> reserve_in(json& cids, const std::filesystem::path& proc, const std::string& owner, const std::string& vm,
                            std::optional<uint32_t> want, uint64_t start, uint64_t end,
                            const std::function<bool(uint32_t)>& taken_here, const std::string& file, bool& changed) {
  auto mine = [&](const json& e) { return text_of(e, "owner") == owner && text_of(e, "vm") == vm; };
  auto take = [&](uint32_t cid) -> Result<uint32_t> {
    json& e = cids[std::to_string(cid)];
    json holders = mine(e) && e.contains("holders") && e["holders"].is_array() ? e["holders"] : json::array();
    json me = holder(proc, ::getpid());
    for (const auto& h : holders)
      if (h == me) return cid;  // ours already, and this process holds it: nothing to write
    json kept = json::array();
    for (const auto& h : holders)  // our own QEMU of an earlier start stays listed while it lives
      if (holder_lives(proc, h)) kept.push_back(h);
    kept.push_back(me);
    e = {{"owner", owner}, {"vm", vm}, {"holders", kept}};
    changed = true;
    return cid;
  };
  if (want) {
    auto it = cids.find(std::to_string(*want));
    if (it != cids.end() && !mine(*it) && lives(proc, *it))
      return make_error(ErrorCode::kAlreadyExists, "CID " + std::to_string(*want) + " is held by VM " + text_of(*it, "vm") +
                                                       " of another VMM on this host (" + text_of(*it, "owner") +
                                                       "); give the daemons disjoint [cvm] cid_start ranges, or remove and re-create this VM");
    return take(*want);
  }
  for (uint64_t cid = start; cid < end; ++cid) {
    if (taken_here && taken_here(static_cast<uint32_t>(cid))) continue;
    auto it = cids.find(std::to_string(cid));
    if (it != cids.end() && (mine(*it) || lives(proc, *it))) continue;
    return take(static_cast<uint32_t>(cid));
  }
  return make_error(ErrorCode::kResourceExhausted, "CID pool exhausted host-wide (" + std::to_string(end - start) + " CIDs from " +
                                                       std::to_string(start) + ", shared with the other VMMs of this host through " +
                                                       file + "; raise cvm.cid_pool_size)");
}

}  // namespace

Result<uint32_t> CidRegistry::reserve(const std::string& vm, std::optional<uint32_t> want,
                                      const std::function<bool(uint32_t)>& taken_here) {
  Locked reg(file_, *cache_);
  if (!reg.error().empty()) return make_error(ErrorCode::kIo, reg.error());
  bool changed = false;
  auto cid = reserve_in(reg.cids(), proc_, owner_, vm, want, start_, end_, taken_here, file_.string(), changed);
  if (!changed) reg.unchanged();
  else if (auto s = reg.save(proc_); !s.ok()) return s.error();
  return cid;
}

std::map<std::string, Error> CidRegistry::reserve_all(const std::vector<std::pair<std::string, uint32_t>>& vms) {
  std::map<std::string, Error> refused;
  Locked reg(file_, *cache_);
  if (!reg.error().empty()) {
    for (const auto& [vm, cid] : vms) refused.emplace(vm, Error{ErrorCode::kIo, reg.error()});
    return refused;
  }
  bool changed = false;
  for (const auto& [vm, cid] : vms)
    if (auto r = reserve_in(reg.cids(), proc_, owner_, vm, cid, start_, end_, {}, file_.string(), changed); !r.ok())
      refused.emplace(vm, r.error());
  if (!changed) reg.unchanged();
  else if (auto s = reg.save(proc_); !s.ok())
    for (const auto& [vm, cid] : vms) refused.emplace(vm, s.error());
  return refused;
}

Status CidRegistry::add_holder(uint32_t cid, const std::string& vm, int pid) {
  Locked reg(file_, *cache_);
  if (!reg.error().empty()) return make_error(ErrorCode::kIo, reg.error());
  auto it = reg.cids().find(std::to_string(cid));
  if (it == reg.cids().end() || text_of(*it, "owner") != owner_ || text_of(*it, "vm") != vm) {
    reg.unchanged();
    return {};
  }
  json& holders = (*it)["holders"];
  if (!holders.is_array()) holders = json::array();
  holders.push_back(holder(proc_, pid));
  return reg.save(proc_);
}

void CidRegistry::release(uint32_t cid, const std::string& vm) { release_all({{cid, vm}}); }

void CidRegistry::release_all(const std::vector<std::pair<uint32_t, std::string>>& cids) {
  if (cids.empty()) return;
  Locked reg(file_, *cache_);
  if (!reg.error().empty()) return;
  bool changed = false;
  for (const auto& [cid, vm] : cids) {
    auto it = reg.cids().find(std::to_string(cid));
    if (it == reg.cids().end() || text_of(*it, "owner") != owner_ || text_of(*it, "vm") != vm) continue;
    reg.cids().erase(it);
    changed = true;
  }
  if (!changed) reg.unchanged();
  else (void)reg.save(proc_);
}

}  // namespace dstackvmm::internal
