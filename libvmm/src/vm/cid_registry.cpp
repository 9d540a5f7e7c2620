// SPDX-License-Identifier: Apache-2.0
#include "vm/cid_registry.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
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

// One holder {pid, start} whose process still runs (the same pid and start time).
bool holder_lives(const std::filesystem::path& proc, const json& h) {
  if (!h.is_object() || !h.contains("pid") || !h["pid"].is_number_integer()) return false;
  std::string now = start_time(proc, h["pid"].get<int>());
  return !now.empty() && h.contains("start") && h["start"].is_string() && h["start"].get<std::string>() == now;
}

bool lives(const std::filesystem::path& proc, const json& entry) {
  if (!entry.is_object() || !entry.contains("holders") || !entry["holders"].is_array()) return false;
  for (const auto& h : entry["holders"])
    if (holder_lives(proc, h)) return true;
  return false;
}

// The registry, read and written under its lock for the length of one change. The parsed
// document is kept between changes: when the file still holds the very bytes this process
// last read or wrote, it is not parsed again (reading it is cheap; parsing a thousand
// entries is not, and would make every start and removal cost more as VMs are added).
class Locked {
 public:
  Locked(const std::filesystem::path& file, CidRegistryCache& cache) : file_(file), cache_(cache), hold_(cache.mu) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    std::string lock = file.string() + ".lock";
    fd_ = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      error_ = "cannot open the CID registry lock " + lock + ": " + std::strerror(errno);
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) {
        error_ = "cannot lock the CID registry: " + std::string(std::strerror(errno));
        return;
      }
    std::error_code size_ec;
    auto size = std::filesystem::file_size(file, size_ec);
    if (!size_ec && size > kMaxFile) {
      error_ = "the CID registry " + file.string() + " is larger than 16 MiB; move it aside";
      return;
    }
    auto text = read_file(file);
    std::string now = text.ok() ? *text : "";
    if (cache_.text.empty() || now != cache_.text) {
      cache_.doc = now.empty() ? json() : parse_json(now, {kMaxFile, 8});
      if (!cache_.doc.is_object() || !cache_.doc.contains("cids") || !cache_.doc["cids"].is_object())
        cache_.doc = {{"version", 1}, {"cids", json::object()}};
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
  // Not synced: every manager claims its VMs' CIDs again when it opens, so a write lost in a
  // crash is made good then; a start should not wait on the disk for it.
  Status save() {
    std::string text = cache_.doc.dump(1);
    auto s = replace_file(file_, text, 0600);
    if (s.ok()) cache_.text = std::move(text), kept_ = true;
    return s;
  }

 private:
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
  else if (auto s = reg.save(); !s.ok()) return s.error();
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
  else if (auto s = reg.save(); !s.ok())
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
  return reg.save();
}

void CidRegistry::release(uint32_t cid, const std::string& vm) {
  Locked reg(file_, *cache_);
  if (!reg.error().empty()) return;
  auto it = reg.cids().find(std::to_string(cid));
  if (it == reg.cids().end() || text_of(*it, "owner") != owner_ || text_of(*it, "vm") != vm) {
    reg.unchanged();
    return;
  }
  reg.cids().erase(it);
  (void)reg.save();
}

}  // namespace dstackvmm::internal
