// SPDX-License-Identifier: Apache-2.0
// Dispatch: decode the request, run the method's handler, encode the reply or the error.
#include <dstackvmm/server/rpc.hpp>

#include <dstackvmm/version.hpp>

#include "base/json_limits.hpp"
#include "rpc/proto_codec.hpp"
#include "wire/json_codec.hpp"
#include "rpc/services.hpp"

namespace dstackvmm {

using wire::json;

struct RpcDispatcher::Impl {
  std::unique_ptr<ImageRegistry> registry;
  rpc::Context ctx;
  std::vector<rpc::Method> vmm;
  std::vector<rpc::Method> guest;
};

namespace {

RpcReply error_reply(const std::string& message, ErrorCode code = ErrorCode::kInvalidArgument) {
  return RpcReply{400, json{{"error", message}}.dump(2), std::string(error_code_name(code))};
}

std::string_view strip_prefix(std::string_view method) {
  for (std::string_view p : {"Teepod.", "Vmm."})
    if (method.substr(0, p.size()) == p) return method.substr(p.size());
  return method;
}

}  // namespace

RpcDispatcher::RpcDispatcher(VmManager& vmm) : impl_(std::make_unique<Impl>()) {
  impl_->registry = std::make_unique<ImageRegistry>(vmm.config().image.registry, vmm.config().image.path,
                                                   uint64_t{vmm.config().image.max_unpacked_mb} << 20);
  impl_->ctx.vmm = &vmm;
  impl_->ctx.registry = impl_->registry.get();
  impl_->vmm = rpc::vmm_methods();
  impl_->guest = rpc::guest_methods();
}

RpcDispatcher::~RpcDispatcher() = default;

RpcReply RpcDispatcher::call(RpcService service, std::string_view method, const RpcRequest& req) const {
  if (service == RpcService::kVmm) method = strip_prefix(method);
  const auto& table = service == RpcService::kVmm ? impl_->vmm : impl_->guest;
  for (const auto& m : table) {
    if (method != m.name) continue;
    json input = json::object();
    if (req.from_query) {
      input = wire::query_to_json(req.query);
    } else if (!req.body.empty()) {
      std::string why;
      input = internal::parse_json(req.body, {}, &why);
      if (input.is_discarded()) return error_reply("failed to decode request: " + why);
      if (input.is_null()) input = json::object();
      if (!input.is_object()) return error_reply("failed to decode request: expected a JSON object");
    }
    try {
      auto out = m.handler(impl_->ctx, input);
      if (!out.ok()) return error_reply(out.error().message, out.error().code);
      return RpcReply{200, out->dump(-1, ' ', false, json::error_handler_t::replace)};  // never throws
    } catch (const wire::DecodeError& e) {
      return error_reply(std::string("failed to decode request: ") + e.what());
    }
  }
  return error_reply("Service not found: " + std::string(method), ErrorCode::kNotFound);
}

RpcReply RpcDispatcher::failure(bool protobuf, const std::string& message, ErrorCode code) {
  if (!protobuf) return error_reply(message, code);
  return RpcReply{400, rpc::prpc_error(message), std::string(error_code_name(code)), "application/octet-stream"};
}

RpcReply RpcDispatcher::call_protobuf(RpcService service, std::string_view method, std::string_view body) const {
  if (service == RpcService::kVmm) method = strip_prefix(method);
  auto failed = [](const std::string& message, ErrorCode code) { return failure(true, message, code); };
  const auto& table = service == RpcService::kVmm ? impl_->vmm : impl_->guest;
  std::string package = service == RpcService::kVmm ? "vmm." : "guest_api.";
  auto type_of = [&](const char* name) { return std::string(name) == "Empty" ? "google.protobuf.Empty" : package + name; };
  for (const auto& m : table) {
    if (method != m.name) continue;
    json input = json::object();
    if (std::string(m.input) != "Empty") {
      std::string why;
      if (!rpc::proto_to_json(type_of(m.input), body, input, &why))
        return failed("failed to decode request: " + why, ErrorCode::kInvalidArgument);
    }
    try {
      auto out = m.handler(impl_->ctx, input);
      if (!out.ok()) return failed(out.error().message, out.error().code);
      std::string bytes = std::string(m.output) == "Empty" ? std::string() : rpc::json_to_proto(type_of(m.output), *out);
      return RpcReply{200, std::move(bytes), {}, "application/octet-stream"};
    } catch (const wire::DecodeError& e) {
      return failed(std::string("failed to decode request: ") + e.what(), ErrorCode::kInvalidArgument);
    }
  }
  return failed("Service not found: " + std::string(method), ErrorCode::kNotFound);
}

std::string RpcDispatcher::openapi_json() const {
  std::string version = "v" + std::string(api_version()) + " (" + std::string(git_rev()) + ")";
  return rpc::openapi_document(impl_->vmm, impl_->guest, version).dump();
}

std::vector<std::string> RpcDispatcher::methods(RpcService service) const {
  std::vector<std::string> names;
  for (const auto& m : service == RpcService::kVmm ? impl_->vmm : impl_->guest) names.emplace_back(m.name);
  return names;
}

}  // namespace dstackvmm
