// SPDX-License-Identifier: Apache-2.0
// Connection admission (admission.hpp). As head_limit.cpp does with recv(), accept() is
// defined in the executable: cpp-httplib's shared library calls it through its PLT and gets
// this one. A refused connection is answered and closed here; if no other is waiting, the
// call fails with EMFILE, on which cpp-httplib's listen loop pauses 1 ms and accepts again.
#include "admission.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <utility>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define DSTACKVMM_NO_ACCEPT_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DSTACKVMM_NO_ACCEPT_HOOK 1
#endif

namespace dstackvmm::daemon::admission {

namespace {
std::mutex mu;
std::map<std::string, size_t> per_peer;  // guarded by mu
size_t total = 0;                        // guarded by mu
thread_local Connection accepted;
thread_local Connection current;
thread_local bool closing = false;

// Unused where sanitizers keep the accept hook out.
[[maybe_unused]] std::string peer_of(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "?";
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  else if (a.ss_family == AF_INET6) ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
  else return "unix";
  return buf;
}

// Takes a slot for `peer`, or says why not.
[[maybe_unused]] const char* admit(const std::string& peer) {
  std::lock_guard lock(mu);
  if (total >= kMaxConnections) return "the daemon holds its most connections";
  size_t& mine = per_peer[peer];
  if (mine >= kMaxPerPeer) return "this address holds its most connections";
  ++mine;
  ++total;
  return nullptr;
}
}  // namespace

Connection take_accepted() { return std::exchange(accepted, Connection{}); }

void set_current(const Connection& c) {
  current = c;
  closing = false;
}

void close_after_response() { closing = true; }

void after_response() {
  if (!std::exchange(closing, false) || current.fd < 0) return;
  ::shutdown(current.fd, SHUT_RDWR);  // the worker's next read ends, and it closes the socket
}

void release(const std::string& peer) {
  if (peer.empty()) return;
  std::lock_guard lock(mu);
  auto it = per_peer.find(peer);
  if (it == per_peer.end()) return;
  if (--it->second == 0) per_peer.erase(it);
  --total;
}

size_t open_connections() {
  std::lock_guard lock(mu);
  return total;
}

#ifdef DSTACKVMM_NO_ACCEPT_HOOK
bool active() { return false; }
#else
bool active() { return true; }
#endif

}  // namespace dstackvmm::daemon::admission

#ifndef DSTACKVMM_NO_ACCEPT_HOOK
extern "C" int accept(int listener, sockaddr* addr, socklen_t* len) {
  using namespace dstackvmm::daemon::admission;
  for (;;) {
    int fd = static_cast<int>(::syscall(SYS_accept4, listener, addr, len, 0));
    if (fd < 0) return fd;
    std::string peer = peer_of(fd);
    const char* why = admit(peer);
    if (!why) {
      accepted = Connection{peer, fd};
      return fd;
    }
    std::string body = std::string("{\"error\":\"connection refused: ") + why + "; try again shortly\"}";
    std::string reply = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)!::send(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      errno = EMFILE;  // cpp-httplib pauses 1 ms and calls accept again
      return -1;
    }
  }
}
#endif
