// SPDX-License-Identifier: Apache-2.0
// A VM's workdir on disk: what is written at create and start, and read back for VmInfo.
#include "base/json_limits.hpp"
#include "vm/vm_store.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fs_util.hpp"

namespace dstackvmm::internal {

using nlohmann::json;

Status write_state(const VmPaths& paths, bool started) {
  return write_file_atomic(paths.state(), json{{"started", started}}.dump());
}

bool read_state(const VmPaths& paths) {
  auto text = read_file(paths.state());
  if (!text.ok()) return false;
  json j = internal::parse_json(*text);
  return j.is_object() && j.value("started", false);
}

Status write_runtime(const VmPaths& paths, const VmRuntime& r) {
  return write_file_atomic(paths.runtime(), json{{"cid", r.cid}, {"agent_port", r.agent_port}}.dump());
}

std::optional<VmRuntime> read_runtime(const VmPaths& paths) {
  auto text = read_file(paths.runtime());
  if (!text.ok()) return std::nullopt;
  json j = internal::parse_json(*text);
  if (!j.is_object()) return std::nullopt;
  return VmRuntime{j.value("cid", 0u), j.value<uint16_t>("agent_port", 0)};
}

Status write_new_workdir(const VmPaths& paths, const VmManifest& m, const VmConfiguration& c) {
  if (auto s = make_dirs(paths.shared()); !s.ok()) return s;
  if (auto s = write_file_atomic(paths.compose(), c.compose_file); !s.ok()) return s;
  if (!c.encrypted_env.empty())
    if (auto s = write_file_atomic(paths.encrypted_env(), c.encrypted_env, 0600); !s.ok()) return s;
  if (!c.user_config.empty())
    if (auto s = write_file_atomic(paths.user_config(), c.user_config); !s.ok()) return s;
  if (auto s = write_file_atomic(paths.instance_info(), json{{"app_id", m.app_id}}.dump()); !s.ok()) return s;
  if (auto s = write_state(paths, !c.stopped); !s.ok()) return s;
  return write_manifest(paths, m);
}

Result<VmManifest> read_manifest(const VmPaths& paths) {
  auto text = read_file(paths.manifest());
  if (!text.ok()) return text.error();
  return manifest_from_json(*text);
}

Status write_manifest(const VmPaths& paths, const VmManifest& m) {
  return write_file_atomic(paths.manifest(), manifest_to_json(m));
}

Status remove_workdir(const VmPaths& paths) {
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (const auto& entry : std::filesystem::directory_iterator(paths.dir, ec))
    if (entry.path() != paths.removing_marker()) entries.push_back(entry.path());
  if (ec && ec != std::errc::no_such_file_or_directory)
    return make_error(ErrorCode::kIo, "cannot list " + paths.dir.string() + ": " + ec.message());
  for (const auto& path : entries)
    if (std::filesystem::remove_all(path, ec); ec) return make_error(ErrorCode::kIo, "cannot remove " + path.string() + ": " + ec.message());
  std::filesystem::remove(paths.removing_marker(), ec);
  if (::rmdir(paths.dir.c_str()) != 0 && errno != ENOENT)
    return make_error(ErrorCode::kIo, "cannot remove " + paths.dir.string() + ": " + std::strerror(errno));
  return {};
}

ConfigurationFiles read_configuration_files(const VmPaths& paths) {
  return {read_file(paths.compose()).value_or(""), read_file(paths.encrypted_env()).value_or(""),
          read_file(paths.user_config()).value_or("")};
}

void ConfigurationFiles::add_to(VmConfiguration* c) const {
  c->compose_file = compose_file;
  c->encrypted_env = encrypted_env;
  c->user_config = user_config;
}

VmConfiguration read_configuration(const VmManifest& m, bool started) {
  VmConfiguration c;
  c.name = m.name;
  c.image = m.image;
  c.vcpu = m.vcpu;
  c.memory = m.memory;
  c.disk_size = m.disk_size;
  c.ports = m.port_map;
  c.app_id = m.app_id;
  c.hugepages = m.hugepages;
  c.pin_numa = m.pin_numa;
  if (m.gpus) c.gpus = GpuRequest{m.gpus->attach_mode, m.gpus->gpus};
  c.kms_urls = m.kms_urls;
  c.gateway_urls = m.gateway_urls;
  c.stopped = !started;
  c.no_tee = m.no_tee;
  c.networks = m.networks;
  c.simulated_tee = m.simulated_tee;
  return c;
}

std::optional<std::string> read_instance_id(const VmPaths& paths) {
  auto text = read_file(paths.instance_info());
  if (!text.ok()) return std::nullopt;
  json j = internal::parse_json(*text);
  if (!j.is_object() || !j.contains("instance_id") || !j["instance_id"].is_string()) return std::nullopt;
  std::string id = j["instance_id"];
  if (id.find_first_not_of(" \t") == std::string::npos) return std::nullopt;
  return id;
}

Status write_sys_config(const VmPaths& paths, const Config& config, const VmManifest& m, const Image& image,
                        const std::string& host_api_url, const LaunchFacts& facts) {
  const CvmConfig& cvm = config.cvm;
  size_t gpus = m.gpus ? m.gpus->gpus.size() : 0, bridges = m.gpus ? m.gpus->bridges.size() : 0;
  json vm_config{{"spec_version", 1},
                 {"os_image_hash", image.digest},
                 {"cpu_count", facts.vcpus},
                 {"memory_size", facts.memory_mb * 1024 * 1024},
                 {"qemu_single_pass_add_pages", cvm.qemu_single_pass_add_pages ? json(*cvm.qemu_single_pass_add_pages) : json()},
                 {"pic", cvm.qemu_pic ? json(*cvm.qemu_pic) : json()},
                 {"qemu_version", cvm.qemu_version ? json(*cvm.qemu_version) : json()},
                 {"pci_hole64_size", cvm.qemu_pci_hole64_size},
                 {"hugepages", m.hugepages},
                 {"num_gpus", gpus},
                 {"num_nvswitches", bridges},
                 {"num_nics", facts.num_nics},
                 {"num_verity_volumes", m.volumes.size()},
                 {"swtpm", m.swtpm},
                 {"host_share_mode", cvm.host_share_mode},
                 {"hotplug_off", cvm.qemu_hotplug_off},
                 {"image", m.image},
                 {"tdx_attestation_variant", facts.tdx_attestation_variant}};
  json sys{{"kms_urls", m.kms_urls.empty() ? cvm.kms_urls : m.kms_urls},
           {"gateway_urls", m.gateway_urls.empty() ? cvm.gateway_urls : m.gateway_urls},
           {"pccs_url", cvm.pccs_url},
           {"collateral_urls", {{"pccs", cvm.pccs_url}}},
           {"nvidia_attestation_proxy_url",
            cvm.nvidia_attestation_proxy_url ? json(*cvm.nvidia_attestation_proxy_url) : json()},
           {"docker_registry", cvm.docker_registry},
           {"host_api_url", host_api_url},
           {"vm_config", vm_config.dump()}};
  return write_file_atomic(paths.sys_config(), sys.dump());
}

}  // namespace dstackvmm::internal
