// SPDX-License-Identifier: Apache-2.0
// The prpc services without HTTP: a method and a JSON payload in, a status and JSON body out.
#pragma once


#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm {

struct RpcReply {
  int status = 200;  // 200, or 400 with {"error": "..."} as upstream answers every failure
  std::string body;  // JSON text; "null" for Empty results
  // On errors, error_code_name() of the library's code. The daemon sends it as the header
  // X-Error-Code (upstream's clients ignore it), so ours can tell "not found" from "in use".
  std::string error_code;
  std::string content_type = "application/json";  // application/octet-stream in protobuf mode
};

// What one HTTP request carried: a JSON body (POST), or the query string (GET, decoded as
// serde_qs would: `id=x`, `ids[0]=a&ids[1]=b`).
struct RpcRequest {
  std::string_view body;
  std::string_view query;
  bool from_query = false;
};

enum class RpcService {
  kVmm,    // /prpc: the Vmm service (23 methods)
  kGuest,  // /guest: the proxied guest agent (Info, SysInfo, NetworkInfo, ListContainers, Shutdown)
};

// A VmConfiguration written as CreateVm's JSON body (`dstack-vmm run VM_CONFIG`), with the
// same bounds and field checks as the RPC. kInvalidArgument naming what is wrong.
Result<VmConfiguration> decode_vm_configuration_json(std::string_view text);

// Dispatches prpc calls onto a VmManager. Thread-safe; borrows the manager.
class RpcDispatcher {
 public:
  explicit RpcDispatcher(VmManager& vmm);
  ~RpcDispatcher();
  RpcDispatcher(const RpcDispatcher&) = delete;
  RpcDispatcher& operator=(const RpcDispatcher&) = delete;

  // `method` may carry upstream's legacy "Teepod." or a "Vmm." prefix. An empty body, "null"
  // and "{}" all mean "no input".
  RpcReply call(RpcService service, std::string_view method, const RpcRequest& request) const;
  RpcReply call(std::string_view method, std::string_view json_body) const {
    return call(RpcService::kVmm, method, RpcRequest{json_body, {}, false});
  }

  // Protobuf mode: `body` is the binary request message (ignored for Empty inputs); the reply
  // is the binary answer (0 bytes for Empty), or status 400 with an encoded prpc.PrpcError.
  // Same method table and handlers as JSON mode.
  RpcReply call_protobuf(RpcService service, std::string_view method, std::string_view body) const;

  // A failure before dispatch (the body could not be read), in either mode's encoding.
  static RpcReply failure(bool protobuf, const std::string& message, ErrorCode code = ErrorCode::kInvalidArgument);

  // The OpenAPI 3.1 document of both services, generated from the same method table.
  std::string openapi_json() const;

  // Whether a method only reads (a listing, a lookup). Unknown methods read nothing either:
  // they fail in dispatch. Mutating methods are what a server must never run from a request
  // a browser would send cross-site (a GET, a form or text POST).
  bool reads_only(RpcService service, std::string_view method) const;

  // The method names of a service, in table order.
  std::vector<std::string> methods(RpcService service) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm
