// SPDX-License-Identifier: Apache-2.0
// The OpenAPI 3.1 document of the prpc services: each method a path, each message a schema
// read from the .proto descriptors (message_schemas), so the document cannot drift from the wire.
#include "rpc/proto_codec.hpp"
#include "rpc/services.hpp"

namespace dstackvmm::rpc {

namespace {

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
  json schemas = message_schemas("vmm");
  schemas.update(message_schemas("guest_api"));
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
