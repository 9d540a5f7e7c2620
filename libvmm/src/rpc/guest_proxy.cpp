// SPDX-License-Identifier: Apache-2.0
// The proxied guest agent (/guest): look the VM up, call its agent over the guest channel.
#include "base/json_limits.hpp"
#include "rpc/services.hpp"

namespace dstackvmm::rpc {

namespace {
Method proxied(const char* name, const char* output) {
  return {name, [name](const Context& c, const json& in) -> Result<json> {
            auto body = c.vmm->guest_agent_call(get_string(in, "id"), name);
            if (!body.ok()) {
              if (body.error().code == ErrorCode::kNotFound) return make_error(ErrorCode::kNotFound, "vm not found");
              return body.error();
            }
            std::string why;
            json out = internal::parse_json(*body, {}, &why);
            if (out.is_discarded()) return make_error(ErrorCode::kUnavailable, "guest agent answered " + std::string(name) + " with invalid JSON: " + why);
            return out;
          },
          "Id", output};
}
}  // namespace

std::vector<Method> guest_methods() {
  std::vector<Method> table{proxied("Info", "GuestInfo"), proxied("SysInfo", "SystemInfo"),
                            proxied("NetworkInfo", "NetworkInformation"), proxied("ListContainers", "ListContainersResponse"),
                            proxied("Shutdown", "Empty")};
  for (auto& m : table) m.reads_only = std::string_view(m.name) != "Shutdown";
  return table;
}

}  // namespace dstackvmm::rpc
