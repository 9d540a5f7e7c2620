// SPDX-License-Identifier: Apache-2.0
// The count works by defining recv() in the executable: cpp-httplib's shared library calls
// recv through its PLT, and the executable's definition takes precedence, as malloc
// replacements do. Every other caller passes straight through (it is not counting).
#include "head_limit.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define DSTACKVMM_NO_RECV_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DSTACKVMM_NO_RECV_HOOK 1
#endif

namespace dstackvmm::daemon::head_limit {

namespace {
thread_local bool counting = false;
thread_local size_t seen = 0;
thread_local std::chrono::steady_clock::time_point started;
}  // namespace

void begin_head() {
  counting = true;
  seen = 0;
  started = std::chrono::steady_clock::now();
}
void end_head() { counting = false; }

#ifdef DSTACKVMM_NO_RECV_HOOK
bool active() { return false; }
#else
bool active() { return true; }
#endif

}  // namespace dstackvmm::daemon::head_limit

#ifndef DSTACKVMM_NO_RECV_HOOK
extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using namespace dstackvmm::daemon::head_limit;
  if (counting && (seen > kMaxHeadBytes || std::chrono::steady_clock::now() - started > kMaxHeadTime)) {
    // The failed read alone does not end the connection: cpp-httplib answers it 400 and, on a
    // kept-alive connection, reads the next head (the rest of this one) with a new count. Shut
    // down, the socket fails that answer and every read after it, and the worker closes it.
    ::shutdown(fd, SHUT_RDWR);
    errno = ECONNRESET;
    return -1;
  }
  ssize_t n = static_cast<ssize_t>(::syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr));
  if (n > 0 && counting && !(flags & MSG_PEEK)) seen += static_cast<size_t>(n);
  return n;
}
#endif
