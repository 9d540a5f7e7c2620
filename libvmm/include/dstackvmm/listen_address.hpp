// SPDX-License-Identifier: Apache-2.0
// Where a server listens: a unix socket path or a TCP host and port.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

struct DSTACKVMM_EXPORT ListenAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kTcp;
  std::string path;  // kUnix
  std::string host;  // kTcp: an IP address or a host name
  uint16_t port = 0;  // kTcp

  // "unix:/run/vmm.sock" or "127.0.0.1:8080" / "[::1]:8080".
  std::string to_string() const;
  // Only this host can connect: a unix socket, 127.0.0.0/8, ::1 or `localhost`.
  bool is_local() const;
  // The base URL a client uses: "http://127.0.0.1:8080" (TCP) or "unix:/path" (unix).
  std::string url() const;
};

// Parses upstream's `address` + `port` pair: `unix:PATH`; an IP address (or `localhost`)
// whose port is `port`; or `HOST:PORT` / `[V6]:PORT`, where the port in `address` wins.
DSTACKVMM_EXPORT Result<ListenAddress> parse_listen_address(std::string_view address, uint32_t port);

DSTACKVMM_EXPORT bool is_ip_address(std::string_view text);

}  // namespace dstackvmm
