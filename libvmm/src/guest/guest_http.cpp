// SPDX-License-Identifier: Apache-2.0
#include "guest/guest_http.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dstackvmm::internal {

namespace {

using Clock = std::chrono::steady_clock;

enum class Wait { kReady, kTimeout, kStopped };

Wait wait_readable(int fd, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::kTimeout;
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int rc = ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 60000)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Wait::kStopped;
    if (stop_fd >= 0 && p[1].revents) return Wait::kStopped;
    if (p[0].revents) return Wait::kReady;
  }
}

// Appends what is there. kTimeout when the deadline passed; kStopped on EOF, error or stop.
Wait read_some(int fd, std::string& buf, int stop_fd, Clock::time_point deadline) {
  Wait w = wait_readable(fd, stop_fd, deadline);
  if (w != Wait::kReady) return w;
  char chunk[8192];
  ssize_t n;
  do n = ::recv(fd, chunk, sizeof chunk, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return Wait::kStopped;
  buf.append(chunk, static_cast<size_t>(n));
  return Wait::kReady;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

GuestHttpRead bad(int status, std::string why) {
  GuestHttpRead r;
  r.outcome = GuestHttpRead::Outcome::kBad;
  r.status = status;
  r.error = std::move(why);
  return r;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    default: return "Bad Request";
  }
}

}  // namespace

GuestHttpRead parse_guest_request(std::string& buf, const GuestHttpLimits& limits) {
  GuestHttpRead more;
  more.outcome = GuestHttpRead::Outcome::kNeedMore;
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (buf.size() > limits.max_head) return bad(431, "request head is larger than " + std::to_string(limits.max_head) + " bytes");
    return more;
  }
  if (head_end > limits.max_head) return bad(431, "request head is larger than " + std::to_string(limits.max_head) + " bytes");
  std::string_view head(buf.data(), head_end);
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return bad(400, "malformed request line");
  GuestHttpRead r;
  r.request.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.request.path = std::string(target.substr(0, target.find('?')));
  size_t length = 0, headers = 0;
  bool have_length = false;
  for (size_t at = line_end; at != std::string_view::npos && at < head.size();) {
    size_t next = head.find("\r\n", at + 2);
    std::string_view h = head.substr(at + 2, next == std::string_view::npos ? std::string_view::npos : next - at - 2);
    at = next;
    if (h.empty()) continue;
    if (++headers > limits.max_headers) return bad(431, "more than " + std::to_string(limits.max_headers) + " headers");
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return bad(400, "malformed header line");
    std::string name = lower(trim(h.substr(0, colon)));
    std::string_view value = trim(h.substr(colon + 1));
    if (name == "transfer-encoding") return bad(501, "Transfer-Encoding is not accepted; send a Content-Length body");
    if (name == "content-encoding" && lower(value) != "identity")
      return bad(415, "Content-Encoding " + std::string(value.substr(0, 32)) + " is not accepted; send the body as is");
    if (name == "content-length") {
      if (value.empty() || value.size() > 12 || value.find_first_not_of("0123456789") != std::string_view::npos)
        return bad(400, "malformed Content-Length");
      size_t v = 0;
      for (char c : value) v = v * 10 + static_cast<size_t>(c - '0');
      if (have_length && v != length) return bad(400, "conflicting Content-Length headers");
      length = v;
      have_length = true;
    }
  }
  if (length > limits.max_body)
    return bad(413, "failed to read data: payload too large (over " + std::to_string(limits.max_body) + " bytes)");
  size_t body_start = head_end + 4;
  if (buf.size() - body_start < length) return more;
  r.request.body = buf.substr(body_start, length);
  buf.erase(0, body_start + length);
  r.outcome = GuestHttpRead::Outcome::kRequest;
  return r;
}

GuestHttpRead read_guest_request(int fd, std::string& buf, const GuestHttpLimits& limits, int stop_fd,
                                 Clock::time_point idle_deadline) {
  if (buf.empty() && read_some(fd, buf, stop_fd, idle_deadline) != Wait::kReady) return {};
  auto deadline = Clock::now() + limits.request_time;
  for (;;) {
    GuestHttpRead r = parse_guest_request(buf, limits);
    if (r.outcome != GuestHttpRead::Outcome::kNeedMore) return r;
    if (Wait w = read_some(fd, buf, stop_fd, deadline); w != Wait::kReady)
      return w == Wait::kTimeout ? bad(408, "request not complete within the time limit") : GuestHttpRead{};
  }
}

std::string format_guest_reply(int status, const std::string& body, bool keep_open) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         (keep_open ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") + body;
}

std::pair<int, std::string> route_guest_request(const GuestHttpRequest& request, const GuestApiHandler& handler) {
  const std::string& path = request.path;
  if (path.rfind("/api/", 0) != 0 || path.size() == 5 || path.find('/', 5) != std::string::npos)
    return {404, "{\"error\":\"not found\"}"};
  return handler(path.substr(5), request.body);
}

std::string bad_request_body(const GuestHttpRead& r) { return nlohmann::json{{"error", r.error}}.dump(); }

bool write_guest_reply(int fd, int status, const std::string& body, bool keep_open, Clock::time_point deadline) {
  std::string out = format_guest_reply(status, body, keep_open);
  size_t done = 0;
  while (done < out.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLOUT, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void serve_guest_api(int fd, const GuestApiHandler& handler, bool persistent, int stop_fd, const GuestHttpLimits& limits) {
  std::string buf;
  // A guest's own connection must send its request promptly; QEMU's stream may idle forever.
  auto idle = persistent ? Clock::time_point::max() : Clock::now() + limits.request_time;
  for (;;) {
    GuestHttpRead r = read_guest_request(fd, buf, limits, stop_fd, idle);
    auto reply_by = Clock::now() + std::chrono::seconds(5);
    if (r.outcome == GuestHttpRead::Outcome::kClosed) return;
    if (r.outcome == GuestHttpRead::Outcome::kBad) {
      // After a malformed request the stream cannot be trusted to be in step: answer, close.
      write_guest_reply(fd, r.status, bad_request_body(r), false, reply_by);
      return;
    }
    std::pair<int, std::string> out = route_guest_request(r.request, handler);
    if (!write_guest_reply(fd, out.first, out.second, persistent, Clock::now() + std::chrono::seconds(5)) || !persistent) return;
  }
}

}  // namespace dstackvmm::internal
