// SPDX-License-Identifier: Apache-2.0
#include "server/vsock_address.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dstackvmm::internal {

std::optional<uint32_t> parse_vsock_cid(const std::string& address) {
  if (address.rfind("vsock:", 0) != 0) return std::nullopt;
  std::string cid = address.substr(6);
  bool hex = cid.rfind("0x", 0) == 0;
  std::string digits = hex ? cid.substr(2) : cid;
  if (digits.empty() || digits.size() > 8) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    int d = c >= '0' && c <= '9' ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v * (hex ? 16 : 10) + static_cast<uint64_t>(d);
  }
  if (v > 0xffffffffULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

Result<int> listen_vsock(uint32_t cid, uint32_t port) {
  int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return make_error(ErrorCode::kIo, "cannot listen on vsock:" + std::to_string(cid) + ":" + std::to_string(port) + ": " + why);
  }
  return fd;
}

}  // namespace dstackvmm::internal
