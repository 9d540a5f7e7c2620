// SPDX-License-Identifier: Apache-2.0
// The host side of the guest channel: the per-VM host-API socket and the guest-agent client.
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

// Serves the host API (/api/Info, /api/Notify) on one VM's unix socket, which QEMU's guestfwd
// chardev connects to; whoever connects there is that VM (the socket is the identity, as the
// vsock CID is upstream). One thread per VM, one connection at a time.
class HostApiListener {
 public:
  // Called with (method, JSON body); returns (HTTP status, JSON body).
  using Handler = std::function<std::pair<int, std::string>(const std::string&, const std::string&)>;
  static Result<std::unique_ptr<HostApiListener>> start(const std::filesystem::path& socket, Handler handler);
  ~HostApiListener();

 private:
  struct Impl;
  explicit HostApiListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

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
