// SPDX-License-Identifier: Apache-2.0
// The guest-agent client: the host calling into a guest (the reverse, guests calling the
// host API, is served by server/host_api_server).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>
#include <dstackvmm/qemu_command.hpp>

namespace dstackvmm::internal {

// POST /api/<method>?json with body `null` to the guest agent, over vsock (<cid>:8000) or the
// user-net loopback forward. Returns the JSON body. kUnavailable when the agent does not
// answer within `timeout`; kUnavailable "Invalid status code: <n>, path=..." on a non-200.
Result<std::string> call_guest_agent(const GuestChannel& channel, uint32_t cid, std::string_view method,
                                     std::chrono::milliseconds timeout);

// The agent's raw HTTP reply to `path` -> its body (chunked decoded); errors as above.
Result<std::string> parse_agent_reply(const std::string& reply, const std::string& path);

// A loopback TCP port that was free a moment ago (bind to 0, read, close).
Result<uint16_t> pick_loopback_port();

}  // namespace dstackvmm::internal
