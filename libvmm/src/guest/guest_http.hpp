// SPDX-License-Identifier: Apache-2.0
// The HTTP/1 a guest speaks to the host API, read from a socket with every bound in place:
// head size, header count, body size, and time. No exceptions, no allocation beyond the
// limits, no Transfer-Encoding or Content-Encoding (a 1 MB gzip body must not become 1 GB).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace dstackvmm::internal {

struct GuestHttpLimits {
  size_t max_head = 16 * 1024;
  size_t max_headers = 64;
  size_t max_body = 256 * 1024;  // a Notify payload is at most 4 KiB, a TDX quote ~10 KiB in hex
  std::chrono::milliseconds request_time{10000};  // first byte to last byte of one request
};

struct GuestHttpRequest {
  std::string method;
  std::string path;  // without the query
  std::string body;
};

struct GuestHttpRead {
  enum class Outcome { kRequest, kClosed, kBad, kNeedMore };
  Outcome outcome = Outcome::kClosed;
  GuestHttpRequest request;
  int status = 0;      // kBad: what to answer
  std::string error;   // kBad: why, for the answer and the log
};

// Parses one request from the front of `buf` without reading: kRequest (taken out of `buf`),
// kNeedMore (nothing taken; read more and call again) or kBad. For event loops.
GuestHttpRead parse_guest_request(std::string& buf, const GuestHttpLimits& limits);

// The bytes of a JSON reply; `keep_open` false adds Connection: close.
std::string format_guest_reply(int status, const std::string& body, bool keep_open);

// Reads one request from `fd`. `buffer` holds bytes read past the previous request (streams
// may carry several). Waits for the first byte until `idle_deadline` or until `stop_fd`
// (when >= 0) becomes readable; the rest must arrive within limits.request_time.
GuestHttpRead read_guest_request(int fd, std::string& buffer, const GuestHttpLimits& limits, int stop_fd,
                                 std::chrono::steady_clock::time_point idle_deadline);

// Writes a JSON reply within `deadline`; false if the peer did not take it.
bool write_guest_reply(int fd, int status, const std::string& body, bool keep_open,
                       std::chrono::steady_clock::time_point deadline);

// Serves /api/<method> requests on `fd`: one when `persistent` is false (a guest's own
// connection), else until the peer closes or sends something malformed (QEMU's chardev
// stream, which carries every guest connection to the host-API address in turn).
using GuestApiHandler = std::function<std::pair<int, std::string>(const std::string& method, const std::string& body)>;
void serve_guest_api(int fd, const GuestApiHandler& handler, bool persistent, int stop_fd,
                     const GuestHttpLimits& limits = {});

// /api/<Method> -> handler(Method, body); anything else 404.
std::pair<int, std::string> route_guest_request(const GuestHttpRequest& request, const GuestApiHandler& handler);
// {"error": why} for a kBad read.
std::string bad_request_body(const GuestHttpRead& r);

}  // namespace dstackvmm::internal
