// SPDX-License-Identifier: Apache-2.0
// The guest-agent client.
#include "guest/guest_channel.hpp"

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>


namespace dstackvmm::internal {

using Clock = std::chrono::steady_clock;

namespace {

Error unavailable(std::string m) { return make_error(ErrorCode::kUnavailable, std::move(m)); }

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

Result<int> connect_agent(const GuestChannel& ch, uint32_t cid, Clock::time_point deadline) {
  int fd;
  int rc;
  if (ch.kind == GuestChannel::Kind::kUserNet) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(ch.agent_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = fd < 0 ? -1 : ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_vm a{};
    a.svm_family = AF_VSOCK;
    a.svm_cid = cid;
    a.svm_port = 8000;
    rc = fd < 0 ? -1 : ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (fd < 0) return unavailable(std::string("guest agent socket: ") + std::strerror(errno));
  if (rc != 0 && errno == EINPROGRESS) {
    if (!wait_fd(fd, POLLOUT, deadline)) {
      ::close(fd);
      return unavailable("guest agent did not accept a connection in time");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    rc = err ? -1 : 0;
    errno = err;
  }
  if (rc != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return unavailable("cannot connect to the guest agent: " + why);
  }
  return fd;
}

// A chunked body as the agent sent it; nullopt when a chunk size is not hex or overruns.
std::optional<std::string> decode_chunked(std::string_view body) {
  std::string out;
  while (!body.empty()) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos || eol == 0 || eol > 16) return std::nullopt;
    std::string_view digits = body.substr(0, body.substr(0, eol).find(';'));  // chunk extensions
    size_t n = 0;
    for (char c : digits) {
      int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (v < 0 || n > (SIZE_MAX >> 4)) return std::nullopt;
      n = n * 16 + static_cast<size_t>(v);
    }
    if (n == 0) return out;
    if (n > body.size() - eol - 2) return std::nullopt;
    out.append(body.substr(eol + 2, n));
    body.remove_prefix(std::min(body.size(), eol + 2 + n + 2));
  }
  return out;
}

}  // namespace

Result<std::string> call_guest_agent(const GuestChannel& ch, uint32_t cid, std::string_view method,
                                     std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto fd = connect_agent(ch, cid, deadline);
  if (!fd.ok()) return fd.error();
  std::string path = "/api/" + std::string(method);
  std::string req = "POST " + path + "?json HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Content-Length: 4\r\nConnection: close\r\n\r\nnull";
  size_t sent = 0;
  while (sent < req.size()) {
    if (!wait_fd(*fd, POLLOUT, deadline)) break;
    ssize_t n = ::send(*fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[8192];
  // A request we could not send whole gets no reply worth waiting for.
  while (sent == req.size() && wait_fd(*fd, POLLIN, deadline)) {
    ssize_t n = ::recv(*fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > (8u << 20)) break;
  }
  ::close(*fd);
  return parse_agent_reply(reply, path);
}

Result<std::string> parse_agent_reply(const std::string& reply, const std::string& path) {
  size_t head_end = reply.find("\r\n\r\n");
  if (reply.compare(0, 5, "HTTP/") != 0 || head_end == std::string::npos)
    return unavailable("guest agent did not answer " + path + " in time");
  size_t sp = reply.find(' ');
  int status = sp < head_end ? std::atoi(reply.c_str() + sp + 1) : 0;
  std::string head = reply.substr(0, head_end);
  std::string body = reply.substr(head_end + 4);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    auto decoded = decode_chunked(body);
    if (!decoded) return unavailable("guest agent sent a malformed chunked body for " + path);
    body = std::move(*decoded);
  }
  if (status != 200) return unavailable("Invalid status code: " + std::to_string(status) + ", path=" + path);
  return body;
}

Result<uint16_t> pick_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return make_error(ErrorCode::kIo, std::string("cannot pick a loopback port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace dstackvmm::internal
