// SPDX-License-Identifier: Apache-2.0
// Dispatch: decode the request, run the method's handler, encode the reply or the error.
#include <dstackvmm/server/rpc.hpp>

#include <algorithm>

#include <dstackvmm/version.hpp>

#include "base/json_limits.hpp"
#include "rpc/proto_codec.hpp"
#include "rpc/status_cache.hpp"
#include "wire/json_codec.hpp"
#include "rpc/services.hpp"

namespace dstackvmm {

using wire::json;

struct RpcDispatcher::Impl {
  std::unique_ptr<ImageRegistry> registry;
  rpc::StatusCache status_cache;
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
  impl_->ctx.status_cache = &impl_->status_cache;
  impl_->vmm = rpc::vmm_methods();
  impl_->guest = rpc::guest_methods();
}

RpcDispatcher::~RpcDispatcher() = default;

bool RpcDispatcher::reads_only(RpcService service, std::string_view method) const {
  const auto& table = service == RpcService::kVmm ? impl_->vmm : impl_->guest;
  method = strip_prefix(method);
  auto m = std::find_if(table.begin(), table.end(), [&](const rpc::Method& x) { return method == x.name; });
  return m == table.end() || m->reads_only;
}

namespace {

// One call in either mode: find the method, decode its input, run the handler, encode the
// answer; every failure goes out in the mode's own encoding.
template <class Decode, class Encode>
RpcReply dispatch(const rpc::Context& ctx, const std::vector<rpc::Method>& table, std::string_view method, bool protobuf,
                  Decode decode, Encode encode) {
  auto m = std::find_if(table.begin(), table.end(), [&](const rpc::Method& x) { return method == x.name; });
  if (m == table.end()) return RpcDispatcher::failure(protobuf, "Service not found: " + std::string(method), ErrorCode::kNotFound);
  json input = json::object();
  std::string why;
  if (!decode(*m, input, why)) return RpcDispatcher::failure(protobuf, "failed to decode request: " + why);
  try {
    if (!protobuf && m->json_text) {
      auto text = m->json_text(ctx, input);
      if (!text.ok()) return RpcDispatcher::failure(protobuf, text.error().message, text.error().code);
      return RpcReply{200, std::move(*text)};
    }
    auto out = m->handler(ctx, input);
    if (!out.ok()) return RpcDispatcher::failure(protobuf, out.error().message, out.error().code);
    return encode(*m, *out);
  } catch (const wire::DecodeError& e) {
    return RpcDispatcher::failure(protobuf, std::string("failed to decode request: ") + e.what());
  }
}

}  // namespace

RpcReply RpcDispatcher::call(RpcService service, std::string_view method, const RpcRequest& req) const {
  if (service == RpcService::kVmm) method = strip_prefix(method);
  auto decode = [&](const rpc::Method&, json& input, std::string& why) {
    if (req.from_query) {
      input = wire::query_to_json(req.query);
    } else if (!req.body.empty()) {
      input = internal::parse_json(req.body, internal::kRequestJsonLimits, &why);
      if (input.is_discarded()) return false;
      if (input.is_null()) input = json::object();
      if (!input.is_object()) return (why = "expected a JSON object"), false;
    }
    return true;
  };
  auto encode = [](const rpc::Method&, const json& out) {
    return RpcReply{200, out.dump(-1, ' ', false, json::error_handler_t::replace)};  // never throws
  };
  return dispatch(impl_->ctx, service == RpcService::kVmm ? impl_->vmm : impl_->guest, method, false, decode, encode);
}

RpcReply RpcDispatcher::failure(bool protobuf, const std::string& message, ErrorCode code) {
  if (!protobuf) return error_reply(message, code);
  return RpcReply{400, rpc::prpc_error(message), std::string(error_code_name(code)), "application/octet-stream"};
}

RpcReply RpcDispatcher::call_protobuf(RpcService service, std::string_view method, std::string_view body) const {
  if (service == RpcService::kVmm) method = strip_prefix(method);
  std::string package = service == RpcService::kVmm ? "vmm." : "guest_api.";
  auto type_of = [&](const char* name) { return std::string(name) == "Empty" ? "google.protobuf.Empty" : package + name; };
  auto decode = [&](const rpc::Method& m, json& input, std::string& why) {
    return std::string(m.input) == "Empty" || rpc::proto_to_json(type_of(m.input), body, input, &why);
  };
  auto encode = [&](const rpc::Method& m, const json& out) {
    std::string bytes = std::string(m.output) == "Empty" ? std::string() : rpc::json_to_proto(type_of(m.output), out);
    return RpcReply{200, std::move(bytes), {}, "application/octet-stream"};
  };
  return dispatch(impl_->ctx, service == RpcService::kVmm ? impl_->vmm : impl_->guest, method, true, decode, encode);
}

Result<VmConfiguration> decode_vm_configuration_json(std::string_view text) {
  std::string why;
  json input = internal::parse_json(text, internal::kRequestJsonLimits, &why);
  if (input.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "not valid JSON: " + why);
  if (!input.is_object()) return make_error(ErrorCode::kInvalidArgument, "expected a JSON object (CreateVm's VmConfiguration)");
  try {
    return wire::decode_vm_configuration(input);
  } catch (const wire::DecodeError& e) {
    return make_error(ErrorCode::kInvalidArgument, e.what());
  }
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
