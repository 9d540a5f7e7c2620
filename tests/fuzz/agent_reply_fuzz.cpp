// SPDX-License-Identifier: Apache-2.0
// A guest agent's raw HTTP reply, parsed as the /guest proxy does.
#include "guest/guest_channel.hpp"
#include "base/json_limits.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string reply(reinterpret_cast<const char*>(data), size);
  auto body = internal::parse_agent_reply(reply, "/api/Info");
  if (body.ok()) {
    auto j = internal::parse_json(*body);
    if (!j.is_discarded()) (void)j.dump();
  }
  return 0;
}
