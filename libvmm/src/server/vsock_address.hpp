// SPDX-License-Identifier: Apache-2.0
// The host API's vsock side: upstream's address syntax and a listening socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// "vsock:2" or "vsock:0x2" -> 2.
std::optional<uint32_t> parse_vsock_cid(const std::string& address);

// A non-blocking vsock socket listening on `cid`:`port`. kIo naming the address when it cannot.
Result<int> listen_vsock(uint32_t cid, uint32_t port);

}  // namespace dstackvmm::internal
