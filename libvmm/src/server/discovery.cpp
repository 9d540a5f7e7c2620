// SPDX-License-Identifier: Apache-2.0
// The discovery file upstream's vmm-cli reads.
#include <dstackvmm/server/discovery.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "base/crypto.hpp"
#include "base/fs_util.hpp"

namespace dstackvmm {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path default_discovery_dir() { return internal::default_discovery_dir(); }

fs::path default_cid_registry() {
  if (const char* env = std::getenv("DSTACK_VMM_CID_REGISTRY")) return std::string(env) == "off" ? fs::path() : fs::path(env);
  if (::getuid() == 0) return "/run/dstack-vmm/cids.json";
  return internal::default_discovery_dir() / "cids.json";
}

Result<DiscoveryFile> DiscoveryFile::publish(const fs::path& dir, const DiscoveryInfo& info) {
  if (auto s = internal::make_dirs(dir); !s.ok()) return s.error();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {  // files of daemons that died
    if (e.path().extension() != ".json") continue;
    auto text = internal::read_file(e.path());
    json j = text.ok() ? internal::parse_json(*text) : json();
    int pid = j.is_object() ? j.value("pid", 0) : 0;
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) fs::remove(e.path(), ec);
  }
  std::string id = internal::new_uuid_v4();
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  json j{{"id", id},
         {"pid", ::getpid()},
         {"address", info.address},
         {"working_dir", info.working_dir},
         {"config_file", info.config_file ? json(*info.config_file) : json()},
         {"image_path", info.image_path},
         {"run_path", info.run_path},
         {"node_name", info.node_name},
         {"version", info.version},
         {"started_at", now}};
  fs::path path = dir / (id + ".json");
  if (auto s = internal::write_file_atomic(path, j.dump(2)); !s.ok()) return s.error();
  return DiscoveryFile(path);
}

DiscoveryFile::~DiscoveryFile() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove(path_, ec);
}

}  // namespace dstackvmm
