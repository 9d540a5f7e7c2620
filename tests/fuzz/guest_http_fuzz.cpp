// SPDX-License-Identifier: Apache-2.0
// Host-API requests as a guest sends them over its channel: the HTTP reader, then the body
// as the host API decodes it.
#include <sys/socket.h>
#include <unistd.h>

#include "guest/guest_http.hpp"
#include "base/json_limits.hpp"
#include "wire/json_codec.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  // Inputs beyond the socket buffer are cut: the reader's limits are below it anyway.
  size_t n = std::min<size_t>(size, 100000);
  (void)!::send(fds[0], data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fds[0], SHUT_WR);
  internal::GuestHttpLimits limits;
  limits.request_time = std::chrono::milliseconds(50);
  internal::serve_guest_api(fds[1], [](const std::string& method, const std::string& body) {
    auto j = internal::parse_json(body);
    if (j.is_object()) {
      try {
        (void)wire::get_string(j, "event");
        (void)wire::get_string(j, "payload");
        (void)wire::get_bytes(j, "quote");
      } catch (const wire::DecodeError&) {
      }
    }
    return std::pair{method == "Info" ? 200 : 400, std::string("null")};
  }, /*persistent=*/true, -1, limits);
  ::close(fds[0]);
  ::close(fds[1]);
  return 0;
}
