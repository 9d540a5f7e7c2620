// SPDX-License-Identifier: Apache-2.0
// The host API on vsock (upstream's transport): one listener for all VMs, each caller named by
// its peer CID, never by anything it sends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// (vm_id, method, body) -> (HTTP status, JSON body)
using HostApiHandler = std::function<std::pair<int, std::string>(const std::string&, const std::string&, const std::string&)>;

// Reads one HTTP/1.x request from `fd` (POST /api/<Method>, Content-Length body up to 2 MiB),
// answers it for `vm_id` and returns; the caller closes fd. 404 for other paths, 400 for
// malformed requests; a silent peer is dropped after 30 s.
void serve_host_api_connection(int fd, const std::string& vm_id, const HostApiHandler& handler);

class VsockHostApi {
 public:
  // Listens on vsock `cid`:`port`. `vm_for_cid` maps a peer CID to a VM id (nullopt: refused).
  static Result<std::unique_ptr<VsockHostApi>> start(uint32_t cid, uint32_t port,
                                                     std::function<std::optional<std::string>(uint32_t)> vm_for_cid,
                                                     HostApiHandler handler);
  ~VsockHostApi();

 private:
  struct Impl;
  explicit VsockHostApi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "vsock:2" or "vsock:0x2" -> 2.
std::optional<uint32_t> parse_vsock_cid(const std::string& address);

}  // namespace dstackvmm::internal
