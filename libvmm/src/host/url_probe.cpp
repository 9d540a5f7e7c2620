// SPDX-License-Identifier: Apache-2.0
#include "host/url_probe.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "process/spawn.hpp"

namespace dstackvmm::internal {

std::optional<std::pair<std::string, std::string>> url_endpoint(const std::string& url) {
  std::string rest;
  std::string port;
  if (url.rfind("http://", 0) == 0) rest = url.substr(7), port = "80";
  else if (url.rfind("https://", 0) == 0) rest = url.substr(8), port = "443";
  else return std::nullopt;
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  std::string host = rest;
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;
  return std::pair{host, port};
}

std::string try_connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout, std::stop_token stop) {
  internal::StopFd stopped(stop);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) return std::string("cannot resolve: ") + gai_strerror(rc);
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p[2] = {{fd, POLLOUT, 0}, {stopped.fd(), POLLIN, 0}};
      rc = ::poll(p, stopped.fd() >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
      if (rc > 0 && !(p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ::close(fd);
        ::freeaddrinfo(res);
        return "not tried (stopped)";
      }
      if (rc == 0) {
        why = "no answer within " + std::to_string(timeout.count()) + " ms";
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
      errno = err;
    }
    if (rc == 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return "";
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return why;
}

}  // namespace dstackvmm::internal
