// SPDX-License-Identifier: Apache-2.0
// The Vmm service (/prpc): 23 methods, each decode -> one VmManager call -> encode.
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>


#include <dstackvmm/version.hpp>

#include "base/json_limits.hpp"
#include "tee/compose_facts.hpp"
#include "vm/app_compose.hpp"
#include "vm/launch_record_json.hpp"
#include "base/crypto.hpp"
#include "rpc/services.hpp"
#include "rpc/status_cache.hpp"

namespace dstackvmm::rpc {

namespace {

const json kEmpty = nullptr;  // Empty results are JSON null: every known client parses it

Result<json> empty_or(Status s, const char* context = nullptr) {
  if (!s.ok()) return context ? s.error().context(context) : s.error();
  return kEmpty;
}

Result<json> create_vm(const Context& c, const json& in) {
  auto id = c.vmm->create(decode_vm_configuration(in));
  if (!id.ok()) return id.error();
  return json{{"id", *id}};
}

Result<json> start_vm(const Context& c, const json& in) {
  return empty_or(c.vmm->start(get_string(in, "id")), "Failed to start VM");
}
Result<json> stop_vm(const Context& c, const json& in) {
  return empty_or(c.vmm->stop(get_string(in, "id")), "Failed to stop VM");
}
Result<json> shutdown_vm(const Context& c, const json& in) {
  return empty_or(c.vmm->shutdown(get_string(in, "id")), "Failed to shutdown VM");
}
Result<json> remove_vm(const Context& c, const json& in) {
  return empty_or(c.vmm->remove(get_string(in, "id")), "Failed to remove VM");
}

Result<json> update_vm(const Context& c, const json& in) {
  auto app_id = c.vmm->update(decode_vm_update(in));
  if (!app_id.ok()) return app_id.error();
  return json{{"id", *app_id}};  // upstream returns the new app id (or ""), not the VM id
}

Result<json> resize_vm(const Context& c, const json& in) {
  auto vcpu = get_opt_u32(in, "vcpu"), memory = get_opt_u32(in, "memory"), disk = get_opt_u32(in, "disk_size");
  if (vcpu && *vcpu == 0) return make_error(ErrorCode::kInvalidArgument, "vcpu must be greater than zero");
  if (memory && *memory == 0) return make_error(ErrorCode::kInvalidArgument, "memory must be greater than zero");
  if (disk && *disk == 0) return make_error(ErrorCode::kInvalidArgument, "disk_size must be greater than zero");
  return empty_or(c.vmm->resize(get_string(in, "id"), vcpu, memory, disk, get_opt_string(in, "image")));
}

Result<json> get_compose_hash(const Context&, const json& in) {
  if (auto s = internal::validate_vm_name(get_string(in, "name")); !s.ok()) return s.error();
  std::string compose = get_string(in, "compose_file");
  if (auto s = internal::validate_compose(compose); !s.ok()) return s.error();
  return json{{"hash", internal::sha256_hex(compose)}};
}

VmQuery status_query(const json& in) {
  VmQuery q;
  q.ids = get_strings(in, "ids");
  q.keyword = get_string(in, "keyword");
  q.with_files = !get_bool(in, "brief");
  q.with_configuration = q.with_files;  // a brief reply has no configuration
  q.page = get_u32(in, "page");
  q.page_size = get_u32(in, "page_size");
  return q;
}

Result<json> status(const Context& c, const json& in) {
  bool brief = get_bool(in, "brief");
  VmPage page = c.vmm->query(status_query(in));
  json reply{{"vms", json::array()}, {"port_mapping_enabled", c.vmm->config().cvm.port_mapping.enabled}, {"total", page.total}};
  json& out = reply["vms"];  // filled in place: a braced list would copy every VM's object
  out.get_ref<json::array_t&>().reserve(page.vms.size());
  for (const auto& vm : page.vms) out.push_back(encode_vm_info(vm, brief));
  return reply;
}

// Status in JSON, from the cache of encoded VMs.
Result<std::string> status_text(const Context& c, const json& in) {
  if (!c.status_cache) {
    auto reply = status(c, in);
    if (!reply.ok()) return reply.error();
    return reply->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  VmQuery q = status_query(in);
  bool every_vm = q.ids.empty() && q.keyword.empty() && !(q.page > 0 && q.page_size > 0);
  return c.status_cache->reply(*c.vmm, std::move(q), c.vmm->config().cvm.port_mapping.enabled, every_vm);
}

Result<json> list_images(const Context& c, const json&) {
  auto list = c.vmm->images();
  if (!list.ok()) return list.error();
  json images = json::array();
  for (const auto& img : list->images)
    images.push_back({{"name", img.name}, {"description", img.metadata_json}, {"version", img.version}, {"is_dev", img.metadata.is_dev}});
  return json{{"images", images}};
}

Result<json> get_app_env_encrypt_pub_key(const Context& c, const json& in) {
  auto key = c.vmm->app_env_encrypt_pub_key(hex_encode(get_bytes(in, "app_id")));
  if (!key.ok()) return key.error();
  return json::parse(*key);  // the library checked it is a JSON object
}

Result<json> get_info(const Context& c, const json& in) {
  auto info = c.vmm->info(get_string(in, "id"));
  if (!info.ok()) {
    // As upstream, an id that names no VM (malformed ones included) is not an error here.
    if (info.error().code == ErrorCode::kNotFound || info.error().code == ErrorCode::kInvalidArgument)
      return json{{"found", false}, {"info", nullptr}};
    return info.error();
  }
  json reply{{"found", true}, {"info", encode_vm_info(*info, false)}};
  if (auto launches = c.vmm->launches(info->id); launches.ok()) reply["launches"] = internal::launch_records_json(*launches);  // as launch.json has them
  return reply;
}

Result<json> check_host(const Context& c, const json&) {
  HostReport report = c.vmm->check_host();
  json checks = json::array();
  for (const auto& h : report.checks)
    checks.push_back({{"name", h.name}, {"level", check_level_name(h.level)}, {"detail", h.detail}, {"fix", h.fix}});
  return json{{"ok", report.ok()}, {"checks", checks}};
}

Result<json> version(const Context&, const json&) { return json{{"version", api_version()}, {"rev", git_rev()}}; }

Result<json> get_meta(const Context& c, const json&) {
  const Config& cfg = c.vmm->config();
  const auto& net = cfg.cvm.networking;
  json modes = c.vmm->supported_network_modes();
  const auto& kms = cfg.cvm.kms_urls;
  const auto& gw = cfg.cvm.gateway_urls;
  return json{
      {"kms", {{"url", kms.empty() ? "" : kms.front()}, {"urls", kms}}},
      {"gateway",
       {{"url", gw.empty() ? "" : gw.front()},
        {"base_domain", cfg.gateway.base_domain},
        {"port", cfg.gateway.port},
        {"agent_port", cfg.gateway.agent_port},
        {"urls", gw}}},
      {"resources",
       {{"max_cvm_number", cfg.cvm.cid_pool_size},
        {"max_allocable_vcpu", cfg.cvm.max_allocable_vcpu},
        {"max_allocable_memory_in_mb", cfg.cvm.max_allocable_memory_in_mb}}},
      {"networking",
       {{"supported_modes", modes}, {"default_mode", net.mode == NetworkMode::kCustom ? "" : std::string(to_string(net.mode))}, {"default_bridge", net.bridge}}},
  };
}

Result<json> list_gpus(const Context& c, const json&) {
  json gpus = json::array();
  for (const auto& d : c.vmm->offered_gpus())
    gpus.push_back({{"slot", d.slot}, {"product_id", d.product_id()}, {"description", d.description()}, {"is_free", !d.bus_master}});
  return json{{"gpus", gpus}, {"allow_attach_all", c.vmm->config().cvm.gpu.allow_attach_all}};
}

Result<json> reload_vms(const Context& c, const json&) {
  auto r = c.vmm->reload();
  if (!r.ok()) return r.error();
  return json{{"loaded", r->loaded}, {"updated", r->updated}, {"removed", r->removed}};
}

std::string process_status(const ProcessInfo& p) {
  switch (p.status) {
    case ProcessStatus::kRunning: return "running";
    case ProcessStatus::kStopped: return "stopped";
    case ProcessStatus::kExited: return "exited(" + std::to_string(WIFEXITED(p.wait_status) ? WEXITSTATUS(p.wait_status) : 128 + WTERMSIG(p.wait_status)) + ")";
    case ProcessStatus::kError: return "error(" + p.error + ")";
  }
  return "stopped";
}

Result<json> sv_list(const Context& c, const json&) {
  auto procs = c.vmm->processes();
  if (!procs.ok()) return procs.error();
  json out = json::array();
  for (const auto& p : *procs)
    out.push_back({{"id", p.spec.id},
                   {"name", p.spec.name},
                   {"status", process_status(p)},
                   {"pid", p.status == ProcessStatus::kRunning && p.pid ? json(*p.pid) : json()},
                   {"command", p.spec.argv.empty() ? "" : p.spec.argv.front()},
                   {"note", p.spec.note}});
  return json{{"processes", out}};
}

Result<json> sv_stop(const Context& c, const json& in) { return empty_or(c.vmm->stop_process(get_string(in, "id"))); }
Result<json> sv_remove(const Context& c, const json& in) { return empty_or(c.vmm->remove_process(get_string(in, "id"))); }

Result<json> list_registry_images(const Context& c, const json&) {
  auto list = c.registry->list();
  if (!list.ok()) return list.error();
  json images = json::array();
  for (const auto& i : *list) {
    json img{{"tag", i.tag}, {"local", i.local}, {"pulling", i.pulling}, {"error", i.error}};
    // Not in upstream's message (clients ignore unknown fields): how far a pull has got.
    if (i.pulling) img["progress"] = {{"bytes_done", i.bytes_done}, {"bytes_total", i.bytes_total}};
    images.push_back(img);
  }
  return json{{"images", images}};
}

Result<json> pull_registry_image(const Context& c, const json& in) {
  return empty_or(c.registry->pull(get_string(in, "tag")));
}

Result<json> delete_image(const Context& c, const json& in) { return empty_or(c.vmm->delete_image(get_string(in, "id"))); }

}  // namespace

std::vector<Method> vmm_methods() {
  std::vector<Method> table{
      {"CreateVm", create_vm, "VmConfiguration", "Id"},
      {"StartVm", start_vm, "Id", "Empty"},
      {"StopVm", stop_vm, "Id", "Empty"},
      {"ShutdownVm", shutdown_vm, "Id", "Empty"},
      {"RemoveVm", remove_vm, "Id", "Empty"},
      {"UpgradeApp", update_vm, "UpdateVmRequest", "Id"},  // deprecated alias, identical
      {"UpdateVm", update_vm, "UpdateVmRequest", "Id"},
      {"ResizeVm", resize_vm, "ResizeVmRequest", "Empty"},
      {"GetComposeHash", get_compose_hash, "VmConfiguration", "ComposeHash"},
      {"Status", status, "StatusRequest", "StatusResponse", status_text},
      {"ListImages", list_images, "Empty", "ImageListResponse"},
      {"GetAppEnvEncryptPubKey", get_app_env_encrypt_pub_key, "AppId", "PublicKeyResponse"},
      {"GetInfo", get_info, "Id", "GetInfoResponse"},
      {"Version", version, "Empty", "VersionResponse"},
      {"GetMeta", get_meta, "Empty", "GetMetaResponse"},
      {"ListGpus", list_gpus, "Empty", "ListGpusResponse"},
      {"ReloadVms", reload_vms, "Empty", "ReloadVmsResponse"},
      {"SvList", sv_list, "Empty", "SvListResponse"},
      {"SvStop", sv_stop, "Id", "Empty"},
      {"SvRemove", sv_remove, "Id", "Empty"},
      {"ListRegistryImages", list_registry_images, "Empty", "RegistryImageListResponse"},
      {"PullRegistryImage", pull_registry_image, "PullRegistryImageRequest", "Empty"},
      {"DeleteImage", delete_image, "Id", "Empty"},
      {"CheckHost", check_host, "Empty", "HostCheckResponse"},  // ours
  };
  for (auto& m : table)
    for (const char* name : {"GetComposeHash", "Status", "ListImages", "GetAppEnvEncryptPubKey", "GetInfo", "Version", "GetMeta",
                             "ListGpus", "SvList", "ListRegistryImages", "CheckHost"})
      m.reads_only = m.reads_only || std::string_view(m.name) == name;
  return table;
}

}  // namespace dstackvmm::rpc
