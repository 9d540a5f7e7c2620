// SPDX-License-Identifier: Apache-2.0
// The supervisor's JSON both ways: a /deploy body it is sent, and the replies a client
// reads back (ProcessInfo lists).
#include <dstackvmm/process_launcher.hpp>
#include <dstackvmm/server/supervisor.hpp>

#include "base/json_limits.hpp"
#include "process/process_json.hpp"

using namespace dstackvmm;

namespace {
// Refuses everything: the fuzz target exercises decoding, not process control.
class NullLauncher : public ProcessLauncher {
 public:
  Status start(const ProcessSpec&) override { return make_error(ErrorCode::kInvalidArgument, "no"); }
  Status stop(const std::string&) override { return make_error(ErrorCode::kNotFound, "no"); }
  Status remove(const std::string&) override { return make_error(ErrorCode::kNotFound, "no"); }
  Result<std::optional<ProcessInfo>> info(const std::string&) override { return std::optional<ProcessInfo>(); }
  Result<std::vector<ProcessInfo>> list() override { return std::vector<ProcessInfo>(); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  NullLauncher l;
  (void)handle_supervisor_request(l, "POST", "/deploy", body, {});
  auto j = internal::parse_json(body);
  try {
    if (j.is_object()) (void)internal::process_info_from(j);
    if (j.is_object() && j.contains("data") && j["data"].is_array())
      for (const auto& p : j["data"]) (void)internal::process_info_from(p);
  } catch (const std::exception&) {  // documented: malformed documents throw; callers catch
  }
  return 0;
}
