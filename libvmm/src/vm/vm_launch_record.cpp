// SPDX-License-Identifier: Apache-2.0
// VmManager: launch.json, the record of what each boot ran (launch_record.hpp). A start writes
// its record at once; the sha256 of files not hashed before, and the exit of that boot, are
// filled in later by jobs on one thread, in order, so a start never waits on hashing a rootfs.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <dstackvmm/log.hpp>
#include <dstackvmm/vm_logs.hpp>

#include "base/crypto.hpp"
#include "base/fs_util.hpp"
#include "base/json_limits.hpp"
#include "vm/launch_record_json.hpp"
#include "model/json_writer.hpp"
#include "model/vm_fields.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

namespace {

using nlohmann::json;
constexpr size_t kMaxRecordFile = 1u << 20;
constexpr size_t kSerialTailLines = 20;
constexpr size_t kPanicsKept = 8;  // per launch record

// Lenient, as for any file a user or an older daemon may have touched: what is missing or of
// another type reads as empty; walks the launch record's field table (model/vm_fields.hpp).
class LenientReader {
 public:
  explicit LenientReader(const json& j) : j_(j) {}

  template <class T>
  void field(const char* name, T& v) {
    v = T();
    auto it = j_.find(name);
    if (it == j_.end()) return;
    try {
      v = it->template get<T>();
    } catch (const json::exception&) {
      v = T();
    }
  }
  template <class T>
  void optional(const char* name, std::optional<T>& v, fields::Absent) {
    v.reset();
    auto it = j_.find(name);
    if (it == j_.end()) return;
    if constexpr (std::is_same_v<T, LaunchExit>) {
      if (it->is_object()) v = read<T>(*it);
    } else {
      T value{};
      field(name, value);
      v = value;
    }
  }
  template <class R>
  void records(const char* name, std::vector<R>& list, fields::Absent) {
    list.clear();
    auto it = j_.find(name);
    if (it == j_.end() || !it->is_array()) return;
    for (const auto& e : *it)
      if (e.is_object()) list.push_back(read<R>(e));
  }
  void nonzero(const char* name, uint32_t& n) { field(name, n); }

  template <class R>
  static R read(const json& j) {
    R r;
    LenientReader reader(j);
    fields::describe(fields::Wire{}, reader, r);
    return r;
  }

 private:
  const json& j_;
};

LaunchRecord from_json(const json& j) {
  LaunchRecord r = LenientReader::read<LaunchRecord>(j);
  r.panic_count = std::max<uint32_t>(r.panic_count, static_cast<uint32_t>(r.panics.size()));
  return r;
}

std::vector<LaunchRecord> read_records(const std::filesystem::path& path) {
  std::vector<LaunchRecord> out;
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxRecordFile) return out;
  auto text = internal::read_file(path);
  if (!text.ok()) return out;
  json j = internal::parse_json(*text, {kMaxRecordFile, 8});
  if (!j.is_object() || !j.contains("launches") || !j["launches"].is_array()) return out;
  for (const auto& r : j["launches"])
    if (r.is_object()) out.push_back(from_json(r));
  return out;
}

void write_records(const std::filesystem::path& path, const std::vector<LaunchRecord>& records) {
  json doc{{"version", 1}, {"launches", internal::launch_records_json(records)}};
  if (auto s = internal::write_file_atomic(path, doc.dump(2, ' ', false, json::error_handler_t::replace)); !s.ok())
    log_message(LogLevel::kWarn, "vmm", "cannot write " + path.string() + ": " + s.error().message);
}

// size:mtime, what a hash is remembered by: image files are replaced, not edited in place.
std::string file_stamp(const std::string& path, uint64_t* size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  *size = static_cast<uint64_t>(st.st_size);
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

namespace internal {

void migrate_launch_records(const VmPaths& p) {
  std::error_code ec;
  if (!std::filesystem::exists(p.old_launch_record(), ec) || std::filesystem::exists(p.launch_record(), ec)) return;
  auto size = std::filesystem::file_size(p.old_launch_record(), ec);
  if (ec || size > kMaxRecordFile) return;
  auto text = read_file(p.old_launch_record());
  if (!text.ok()) return;
  json j = parse_json(*text, {kMaxRecordFile, 8});
  if (!j.is_object() || !j.contains("launches")) return;  // upstream's launch spec: not ours to move
  if (::rename(p.old_launch_record().c_str(), p.launch_record().c_str()) != 0)
    log_message(LogLevel::kWarn, "vmm", "cannot move " + p.old_launch_record().string() + " to " + p.launch_record().string());
}

nlohmann::json launch_records_json(const std::vector<LaunchRecord>& records) {
  json list = json::array();
  for (const auto& r : records) list.push_back(fields::JsonWriter<fields::Wire>::write(r));
  return list;
}
}  // namespace internal

namespace {

// What a plan says of a start: everything of its record but the files and the compose hash.
LaunchRecord record_of(const LaunchPlan& plan, uint64_t time_ms) {
  const QemuInputs& in = plan.inputs;
  const VmManifest& m = in.manifest;
  LaunchRecord r;
  r.time_ms = time_ms;
  r.argv = plan.process_argv;
  r.image = m.image;
  r.image_version = in.image.version;
  r.platform = std::string(to_string(in.platform));
  r.accel = std::string(to_string(in.accel));
  r.cid = in.cid;
  r.ports = m.port_map;
  if (m.gpus) {
    r.gpus = m.gpus->gpus;
    r.gpus.insert(r.gpus.end(), m.gpus->bridges.begin(), m.gpus->bridges.end());
  }
  r.app_id = m.app_id;
  r.vm_config = plan.guest.vm_config;
  r.mr_config = plan.guest.mr_config.value_or("");
  return r;
}

}  // namespace

void VmManager::Impl::record_launch(const std::string& id, const LaunchPlan& plan, uint64_t time_ms) {
  const QemuInputs& in = plan.inputs;
  LaunchRecord r = record_of(plan, time_ms);
  internal::VmPaths p = paths(id);
  if (auto compose = internal::read_file(p.compose()); compose.ok()) r.compose_hash = internal::sha256_hex(*compose);
  std::vector<std::pair<std::string, std::optional<std::filesystem::path>>> files{
      {"firmware", in.image.bios}, {"kernel", in.image.kernel}, {"initrd", in.image.initrd},
      {"rootfs", in.image.rootfs}, {"hda", in.image.hda}};
  std::vector<std::string> to_hash;
  for (const auto& [role, path] : files) {
    if (!path || path->empty()) continue;
    LaunchedFile f{role, path->string(), 0, ""};
    std::string stamp = file_stamp(f.path, &f.size);
    {
      std::lock_guard lock(hash_mu);
      auto it = hash_cache.find(f.path);
      if (it != hash_cache.end() && it->second.first == stamp) f.sha256 = it->second.second;
    }
    if (f.sha256.empty() && !stamp.empty()) to_hash.push_back(f.path);
    r.files.push_back(f);
  }
  std::filesystem::path file = p.launch_record();
  size_t keep = std::max<size_t>(1, opt.launch_records);
  record_jobs.post([this, id, file, r, keep, to_hash] { store_launch_record(id, file, r, keep, to_hash); });
}

// On the records job: the record appended (the last `keep` kept), then the files nobody had
// hashed hashed, and the record completed with their sums.
void VmManager::Impl::store_launch_record(const std::string& id, const std::filesystem::path& file, const LaunchRecord& r,
                                          size_t keep, const std::vector<std::string>& to_hash) {
  {
    std::lock_guard write(records_mu);
    if (!may_record(id)) return;
    auto records = read_records(file);
    records.push_back(r);
    if (records.size() > keep) records.erase(records.begin(), records.end() - static_cast<std::ptrdiff_t>(keep));
    write_records(file, records);
  }
  if (to_hash.empty()) return;
  std::map<std::string, std::string> sums;
  for (const auto& path : to_hash) {
    uint64_t size = 0;
    std::string stamp = file_stamp(path, &size);
    std::string sum = internal::sha256_file_hex(path);
    if (sum.empty() || stamp.empty()) continue;
    sums[path] = sum;
    std::lock_guard lock(hash_mu);
    hash_cache[path] = {stamp, sum};
  }
  std::lock_guard write(records_mu);
  if (!may_record(id)) return;
  auto records = read_records(file);
  for (auto& rec : records)
    if (rec.time_ms == r.time_ms)
      for (auto& f : rec.files)
        if (f.sha256.empty() && sums.count(f.path)) f.sha256 = sums[f.path];
  if (!records.empty()) write_records(file, records);
}

void VmManager::Impl::record_exit(const std::string& id, const VmActivity& a) {
  internal::VmPaths p = paths(id);
  record_jobs.post([this, id, file = p.launch_record(), serial = p.serial_log(), a] {
    std::lock_guard write(records_mu);
    if (!may_record(id)) return;
    auto records = read_records(file);
    if (records.empty() || records.back().exit) return;  // no record of this boot (started before records)
    LaunchExit x;
    x.time_ms = a.time_ms;
    x.exit_code = a.exit_code;
    x.exit_signal = a.exit_signal;
    if (auto tail = read_log_tail(serial, kSerialTailLines, 64 * 1024); tail.ok()) {
      std::string text = *tail;
      for (size_t at = 0; at < text.size();) {
        size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) x.serial_tail.push_back(line);
        if (nl == std::string::npos) break;
        at = nl + 1;
      }
    }
    records.back().exit = x;
    write_records(file, records);
  });
}

void VmManager::Impl::record_panic(const std::string& id, const LaunchPanic& panic) {
  record_jobs.post([this, id, file = paths(id).launch_record(), panic] {
    std::lock_guard write(records_mu);
    if (!may_record(id)) return;
    auto records = read_records(file);
    if (records.empty()) return;  // a VM started before launch records (or by another daemon)
    LaunchRecord& r = records.back();
    r.panics.push_back(panic);
    if (r.panics.size() > kPanicsKept) r.panics.erase(r.panics.begin());
    ++r.panic_count;
    write_records(file, records);
  });
}

bool VmManager::Impl::may_record(const std::string& id) const {
  std::lock_guard lock(mu);
  auto it = vms.find(id);
  return it != vms.end() && !it->second->removing;
}

Result<std::vector<LaunchRecord>> VmManager::launches(const std::string& id) const {
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  return read_records(impl_->paths(id).launch_record());
}

}  // namespace dstackvmm
