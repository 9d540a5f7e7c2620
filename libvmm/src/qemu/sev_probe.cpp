// SPDX-License-Identifier: Apache-2.0
// query-sev-capabilities (sev_probe.hpp).
#include "qemu/sev_probe.hpp"

#include <sys/wait.h>

#include <optional>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "process/run_command.hpp"

namespace dstackvmm::internal {

Result<SevCapabilities> parse_sev_capabilities(std::string_view output) {
  std::optional<std::string> error;
  size_t at = 0;
  while (at < output.size()) {
    size_t nl = output.find('\n', at);
    std::string_view line = output.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? output.size() : nl + 1;
    nlohmann::json j = parse_json(line, {64 * 1024, 16});
    if (!j.is_object()) continue;
    if (j.contains("error")) error = j["error"].dump();
    auto r = j.find("return");
    if (r == j.end() || !r->is_object()) continue;
    auto c = r->find("cbitpos"), b = r->find("reduced-phys-bits");
    if (c == r->end() || b == r->end() || !c->is_number_integer() || !b->is_number_integer()) continue;
    if (c->get<int64_t>() < 0 || c->get<int64_t>() > UINT32_MAX)
      return make_error(ErrorCode::kQemu, "QMP cbitpos does not fit in u32");
    if (b->get<int64_t>() < 0 || b->get<int64_t>() > UINT32_MAX)
      return make_error(ErrorCode::kQemu, "QMP reduced-phys-bits does not fit in u32");
    return SevCapabilities{c->get<uint32_t>(), b->get<uint32_t>()};
  }
  if (error) return make_error(ErrorCode::kQemu, "QMP query-sev-capabilities failed: " + *error);
  return make_error(ErrorCode::kQemu, "QMP query-sev-capabilities did not return cbitpos/reduced-phys-bits");
}

Result<SevCapabilities> probe_sev_capabilities(const std::string& qemu, std::chrono::milliseconds timeout) {
  auto wrap = [&](const std::string& why) {
    return make_error(ErrorCode::kQemu, "failed to detect AMD SEV-SNP cbitpos/reduced-phys-bits from QEMU " + qemu + ": " + why);
  };
  auto out = run_command_io({qemu, "-machine", "none,accel=kvm", "-display", "none", "-nodefaults", "-qmp", "stdio"},
                            "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-sev-capabilities\"}\n{\"execute\":\"quit\"}\n",
                            "query-sev-capabilities", timeout);
  if (!out.ok()) return wrap(out.error().message);
  if (!WIFEXITED(out->wait_status) || WEXITSTATUS(out->wait_status) != 0) {
    std::string err = out->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    std::string how = WIFEXITED(out->wait_status) ? "exit status " + std::to_string(WEXITSTATUS(out->wait_status))
                                                  : "signal " + std::to_string(WTERMSIG(out->wait_status));
    return wrap("QEMU query-sev-capabilities exited with " + how + ": " + err);
  }
  auto caps = parse_sev_capabilities(out->out);
  if (!caps.ok()) return wrap(caps.error().message);
  return caps;
}

}  // namespace dstackvmm::internal
