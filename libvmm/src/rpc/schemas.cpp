// SPDX-License-Identifier: Apache-2.0
// The wire messages, declared once in a compact form, rendered as OpenAPI 3.1 schemas.
// Form: one message per line, `Name field:type ...`; types are string, uint32, uint64, int64,
// bool, bytes (hex in JSON), a message name, `[]T` (repeated) and `?T` (optional/nullable).
#include <sstream>

#include "rpc/services.hpp"

namespace dstackvmm::rpc {

namespace {

constexpr const char* kVmmMessages = R"(
Id id:string
ComposeHash hash:string
PortMapping protocol:string host_port:uint32 vm_port:uint32 host_address:string
GpuSpec slot:string
GpuConfig gpus:[]GpuSpec attach_mode:string
NetworkingConfig mode:string bridge_name:string
VmConfiguration name:string image:string compose_file:string vcpu:uint32 memory:uint32 disk_size:uint32 ports:[]PortMapping encrypted_env:bytes app_id:?string user_config:string hugepages:bool pin_numa:bool gpus:?GpuConfig kms_urls:[]string gateway_urls:[]string stopped:bool no_tee:bool networking:?NetworkingConfig networks:[]NetworkingConfig simulated_tee:?string
UpdateVmRequest id:string compose_file:string encrypted_env:bytes user_config:string update_ports:bool ports:[]PortMapping update_kms_urls:bool kms_urls:[]string update_gateway_urls:bool gateway_urls:[]string gpus:?GpuConfig vcpu:?uint32 memory:?uint32 disk_size:?uint32 image:?string no_tee:?bool update_networking:bool networks:[]NetworkingConfig
ResizeVmRequest id:string vcpu:?uint32 memory:?uint32 disk_size:?uint32 image:?string
StatusRequest ids:[]string brief:bool keyword:string page:uint32 page_size:uint32
GuestEvent event:string body:string timestamp:uint64
NetworkInterfaceStatus mode:string backend:string mac:string bridge_name:?string netdev_id:?string
VmInfo id:string name:string status:string uptime:string app_url:?string app_id:string instance_id:?string configuration:?VmConfiguration exited_at:?string boot_progress:string boot_error:string shutdown_progress:string image_version:string events:[]GuestEvent interfaces:[]NetworkInterfaceStatus
StatusResponse vms:[]VmInfo port_mapping_enabled:bool total:uint32
ImageInfo name:string description:string version:string is_dev:bool
ImageListResponse images:[]ImageInfo
AppId app_id:bytes
PublicKeyResponse public_key:bytes signature:bytes timestamp:uint64 signature_v1:bytes
LaunchedFile role:string path:string size:uint64 sha256:string
LaunchExit time_ms:uint64 exit_code:?int64 exit_signal:?int64 serial_tail:[]string
LaunchPanic time_ms:uint64 message:string serial_tail:[]string
LaunchRecord time_ms:uint64 argv:[]string files:[]LaunchedFile image:string image_version:string platform:string accel:string cid:uint32 ports:[]PortMapping gpus:[]string compose_hash:string app_id:string exit:?LaunchExit panics:[]LaunchPanic panic_count:uint32 vm_config:string mr_config:string
GetInfoResponse found:bool info:?VmInfo launches:[]LaunchRecord
HostCheck name:string level:string detail:string fix:string
HostCheckResponse ok:bool checks:[]HostCheck
VersionResponse version:string rev:string
KmsSettings url:string urls:[]string
GatewaySettings url:string base_domain:string port:uint32 agent_port:uint32 urls:[]string
ResourcesSettings max_cvm_number:uint32 max_allocable_vcpu:uint32 max_allocable_memory_in_mb:uint32
NetworkingCapabilities supported_modes:[]string default_mode:string default_bridge:string
GetMetaResponse kms:KmsSettings gateway:GatewaySettings resources:ResourcesSettings networking:NetworkingCapabilities
GpuInfo slot:string product_id:string description:string is_free:bool
ListGpusResponse gpus:[]GpuInfo allow_attach_all:bool
ReloadVmsResponse loaded:uint32 updated:uint32 removed:uint32
SvProcessInfo id:string name:string status:string pid:?uint32 command:string note:string
SvListResponse processes:[]SvProcessInfo
RegistryImageInfo tag:string local:bool pulling:bool error:string
RegistryImageListResponse images:[]RegistryImageInfo
PullRegistryImageRequest tag:string
)";

constexpr const char* kGuestMessages = R"(
Id id:string
GuestInfo version:string app_id:bytes instance_id:bytes app_cert:string tcb_info:string device_id:bytes
DiskInfo name:string mount_point:string total_size:uint64 free_size:uint64
SystemInfo os_name:string os_version:string kernel_version:string cpu_model:string num_cpus:uint32 total_memory:uint64 available_memory:uint64 used_memory:uint64 free_memory:uint64 total_swap:uint64 used_swap:uint64 free_swap:uint64 uptime:uint64 loadavg_one:uint32 loadavg_five:uint32 loadavg_fifteen:uint32 disks:[]DiskInfo
Gateway address:string
IpAddress address:string prefix:uint32
Interface name:string addresses:[]IpAddress rx_bytes:uint64 tx_bytes:uint64 rx_errors:uint64 tx_errors:uint64
NetworkInformation dns_servers:[]string gateways:[]Gateway interfaces:[]Interface wg_info:string
Container id:string names:[]string image:string image_id:string created:int64 state:string status:string
ListContainersResponse containers:[]Container
)";

json type_schema(const std::string& pkg, std::string type) {
  bool optional = !type.empty() && type[0] == '?';
  if (optional) type = type.substr(1);
  if (type.rfind("[]", 0) == 0) return {{"type", "array"}, {"items", type_schema(pkg, type.substr(2))}};
  json s;
  if (type == "string") s = {{"type", "string"}};
  else if (type == "bytes") s = {{"type", "string"}, {"description", "bytes as lowercase hex (0x accepted on input)"}};
  else if (type == "bool") s = {{"type", "boolean"}};
  else if (type == "uint32") s = {{"type", "integer"}, {"format", "uint32"}, {"minimum", 0}};
  else if (type == "uint64") s = {{"type", "integer"}, {"format", "uint64"}, {"minimum", 0}};
  else if (type == "int64") s = {{"type", "integer"}, {"format", "int64"}};
  else s = {{"$ref", "#/components/schemas/" + pkg + "." + type}};
  if (!optional) return s;
  return {{"anyOf", json::array({s, {{"type", "null"}}})}};
}

void add_schemas(json& out, const std::string& pkg, const char* text) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name, field;
    if (!(words >> name)) continue;
    json props = json::object();
    while (words >> field) {
      auto colon = field.find(':');
      props[field.substr(0, colon)] = type_schema(pkg, field.substr(colon + 1));
    }
    out[pkg + "." + name] = {{"type", "object"}, {"properties", props}};
  }
}

void add_paths(json& paths, const std::vector<Method>& methods, const std::string& mount, const std::string& pkg,
               const std::string& service) {
  for (const auto& m : methods) {
    json op{{"operationId", pkg + "_" + service + "_" + m.name},
            {"tags", json::array({pkg + "." + service})},
            {"responses",
             {{"200",
               {{"description", "OK"},
                {"content",
                 {{"application/json",
                   {{"schema", std::string(m.output) == "Empty" ? json{{"type", "object"}}
                                                                : json{{"$ref", "#/components/schemas/" + pkg + "." + m.output}}}}}}}}},
              {"400",
               {{"description", "Error"},
                {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/RpcError"}}}}}}}}}}}};
    if (std::string(m.input) != "Empty")
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/" + pkg + "." + m.input}}}}}}}};
    paths[mount + m.name] = {{"post", op}};
  }
}

}  // namespace

json openapi_document(const std::vector<Method>& vmm, const std::vector<Method>& guest, const std::string& version) {
  json schemas = json::object();
  add_schemas(schemas, "vmm", kVmmMessages);
  add_schemas(schemas, "guest_api", kGuestMessages);
  schemas["RpcError"] = {{"type", "object"}, {"properties", {{"error", {{"type", "string"}}}}}, {"required", json::array({"error"})}};
  json paths = json::object();
  add_paths(paths, vmm, "/prpc/", "vmm", "Vmm");
  add_paths(paths, guest, "/guest/", "guest_api", "ProxiedGuestApi");
  return {{"openapi", "3.1.0"},
          {"info", {{"title", "dstack-vmm RPC"}, {"version", version}}},
          {"servers", json::array({{{"url", "/"}}})},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

}  // namespace dstackvmm::rpc
