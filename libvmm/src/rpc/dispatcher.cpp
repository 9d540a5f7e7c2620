// SPDX-License-Identifier: Apache-2.0
// The Vmm prpc method table: decode JSON, make one library call, encode JSON.
#include <dstackvmm/rpc.hpp>

#include <functional>
#include <system_error>

#include <nlohmann/json.hpp>

#include <dstackvmm/version.hpp>

namespace dstackvmm {

using nlohmann::json;

namespace {
// What every handler may read.
struct Context {
  Config config;
  RpcOptions options;
};
}  // namespace

struct RpcDispatcher::Impl {
  Context ctx;
  using Handler = std::function<Result<json>(const Context&, const json&)>;
  struct Method {
    const char* name;
    Handler handler;
  };
  std::vector<Method> table;
};

namespace {

Result<json> version(const Context&, const json&) {
  return json{{"version", api_version()}, {"rev", git_rev()}};
}

Result<json> get_meta(const Context& d, const json&) {
  const Config& c = d.config;
  const auto& net = c.cvm.networking;
  json modes = json::array({"user"});
  std::error_code ec;
  bool bridge_ok = !net.bridge.empty() &&
                   std::filesystem::exists(d.options.sysfs_root / "class/net" / net.bridge, ec);
  if (!bridge_ok) {
    for (const auto& e : std::filesystem::directory_iterator(d.options.sysfs_root / "class/net", ec))
      bridge_ok = bridge_ok || std::filesystem::exists(e.path() / "bridge", ec);
  }
  if (bridge_ok) modes.push_back("bridge");
  std::string default_mode = net.mode == "custom" ? "" : net.mode;
  return json{
      {"kms",
       {{"url", c.cvm.kms_urls.empty() ? "" : c.cvm.kms_urls.front()}, {"urls", c.cvm.kms_urls}}},
      {"gateway",
       {{"url", c.cvm.gateway_urls.empty() ? "" : c.cvm.gateway_urls.front()},
        {"base_domain", c.gateway.base_domain},
        {"port", c.gateway.port},
        {"agent_port", c.gateway.agent_port},
        {"urls", c.cvm.gateway_urls}}},
      {"resources",
       {{"max_cvm_number", c.cvm.cid_pool_size},
        {"max_allocable_vcpu", c.cvm.max_allocable_vcpu},
        {"max_allocable_memory_in_mb", c.cvm.max_allocable_memory_in_mb}}},
      {"networking",
       {{"supported_modes", modes}, {"default_mode", default_mode}, {"default_bridge", net.bridge}}},
  };
}

RpcReply error_reply(const std::string& message) {
  return RpcReply{400, json{{"error", message}}.dump(2)};
}

std::string_view strip_prefix(std::string_view method) {
  for (std::string_view p : {"Teepod.", "Vmm."})
    if (method.substr(0, p.size()) == p) return method.substr(p.size());
  return method;
}

}  // namespace

RpcDispatcher::RpcDispatcher(const Config& config, RpcOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->ctx = Context{config, std::move(options)};
  impl_->table = {
      {"Version", version},
      {"GetMeta", get_meta},
  };
}

RpcDispatcher::~RpcDispatcher() = default;

RpcReply RpcDispatcher::call(std::string_view method, std::string_view body) const {
  method = strip_prefix(method);
  for (const auto& m : impl_->table) {
    if (method != m.name) continue;
    json input = json::object();
    if (!body.empty()) {
      input = json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (input.is_discarded()) return error_reply("failed to decode request: invalid JSON");
      if (input.is_null()) input = json::object();
    }
    auto out = m.handler(impl_->ctx, input);
    if (!out.ok()) return error_reply(out.error().message);
    return RpcReply{200, out->dump()};
  }
  return error_reply("Service not found: " + std::string(method));
}

std::vector<std::string> RpcDispatcher::methods() const {
  std::vector<std::string> names;
  for (const auto& m : impl_->table) names.emplace_back(m.name);
  return names;
}

}  // namespace dstackvmm
