// SPDX-License-Identifier: Apache-2.0
// A QEMU Machine Protocol client over a unix socket, with deadlines on every read.
#include <dstackvmm/qmp_client.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>
#include "base/json_limits.hpp"

namespace dstackvmm {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
Error unavailable(std::string m) { return make_error(ErrorCode::kUnavailable, std::move(m)); }
Error qemu_error(std::string m) { return make_error(ErrorCode::kQemu, std::move(m)); }
}  // namespace

QmpClient::~QmpClient() { ::close(fd_); }

Result<std::unique_ptr<QmpClient>> QmpClient::connect(const std::filesystem::path& socket, Millis timeout) {
  sockaddr_un addr{};
  std::string path = socket.string();
  if (path.size() >= sizeof addr.sun_path)
    return make_error(ErrorCode::kInvalidArgument, "QMP socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  auto deadline = Clock::now() + timeout;
  int last_errno = 0;
  while (true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::unique_ptr<QmpClient> c(new QmpClient(fd));
      if (auto s = c->handshake(deadline); !s.ok()) return s.error();
      return c;
    }
    last_errno = errno;
    ::close(fd);
    if (Clock::now() >= deadline)
      return unavailable("cannot connect to QMP at " + path + ": " + std::strerror(last_errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // QEMU creates the socket ~30 ms after exec
  }
}

Status QmpClient::handshake(Clock::time_point deadline) {
  auto greeting = read_line(deadline);
  if (!greeting.ok()) return greeting.error();
  json g = internal::parse_json(*greeting);
  if (!g.is_object() || !g.contains("QMP")) return qemu_error("not a QMP greeting: " + greeting->substr(0, 200));
  try {
    // at(), not operator[]: on a const value a missing key is an assertion, not an error.
    const auto& v = g.at("QMP").at("version").at("qemu");
    auto part = [&](const char* key) {  // integers only: a huge float cast to int is undefined
      const auto& n = v.at(key);
      if (!n.is_number_unsigned() || n.get<uint64_t>() > 100000) throw std::invalid_argument("version");
      return std::to_string(n.get<uint64_t>());
    };
    version_ = part("major") + "." + part("minor") + "." + part("micro");
  } catch (const std::exception&) {
    version_.clear();  // a greeting without a version is still QMP
  }
  auto r = execute("qmp_capabilities", {},
                   std::chrono::duration_cast<Millis>(std::max(deadline - Clock::now(), Clock::duration(Millis(100)))));
  if (!r.ok()) return r.error();
  return {};
}

Status QmpClient::send(std::string_view text) {
  std::string line(text);
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unavailable(std::string("QMP connection closed (") + std::strerror(errno) + ")");
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<std::string> QmpClient::read_line(Clock::time_point deadline) {
  while (true) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      return line;
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return unavailable("QMP peer did not answer in time");
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return unavailable(std::string("QMP poll: ") + std::strerror(errno));
    if (rc == 0) return unavailable("QMP peer did not answer in time");
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return unavailable("QMP connection closed");
    buffer_.append(chunk, static_cast<size_t>(n));
    if (buffer_.size() > (16u << 20)) return qemu_error("QMP message larger than 16 MiB");
  }
}

void QmpClient::remember_event(std::string name, std::string data) {
  // Bounded: a peer that only ever sends events must not grow this without end.
  if (events_.size() >= 1000) events_.erase(events_.begin(), events_.begin() + 500);
  events_.push_back({std::move(name), std::move(data)});
}

Result<std::string> QmpClient::execute(std::string_view command, std::string_view arguments, Millis timeout) {
  json req{{"execute", command}};
  if (!arguments.empty()) {
    json args = internal::parse_json(arguments);
    if (!args.is_object())
      return make_error(ErrorCode::kInvalidArgument, "QMP arguments must be a JSON object");
    req["arguments"] = args;
  }
  std::string cmd(command);
  if (auto s = send(req.dump()); !s.ok()) return s.error().context("QMP " + cmd);
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto line = read_line(deadline);
    if (!line.ok()) return line.error().context("QMP " + cmd);
    json msg = internal::parse_json(*line);
    if (!msg.is_object()) return qemu_error("malformed QMP message: " + line->substr(0, 200));
    if (msg.contains("event")) {
      remember_event(msg["event"].is_string() ? msg["event"].get<std::string>() : "", msg.contains("data") ? msg["data"].dump() : "{}");
      continue;
    }
    if (msg.contains("return")) return msg["return"].dump();
    if (msg.contains("error")) {
      const json& e = msg["error"];
      std::string desc = e.is_object() && e.contains("desc") && e["desc"].is_string() ? e["desc"].get<std::string>() : e.dump();
      return qemu_error("QMP " + cmd + " failed: " + desc);
    }
    return qemu_error("malformed QMP message: " + line->substr(0, 200));
  }
}

Result<QmpStatus> QmpClient::query_status(Millis timeout) {
  auto r = execute("query-status", {}, timeout);
  if (!r.ok()) return r.error();
  json j = internal::parse_json(*r);
  if (!j.is_object() || !j.contains("status") || !j["status"].is_string() || (j.contains("running") && !j["running"].is_boolean()))
    return qemu_error("malformed query-status reply: " + r->substr(0, 200));
  return QmpStatus{j["status"].get<std::string>(), j.value("running", false)};
}

Status QmpClient::system_powerdown(Millis timeout) {
  auto r = execute("system_powerdown", {}, timeout);
  if (!r.ok()) return r.error();
  return {};
}

Status QmpClient::quit(Millis timeout) {
  auto r = execute("quit", {}, timeout);
  if (!r.ok()) return r.error();
  return {};
}

Result<QmpEvent> QmpClient::wait_event(std::string_view name, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  size_t seen = 0;
  while (true) {
    for (; seen < events_.size(); ++seen)
      if (events_[seen].name == name) return events_[seen];
    auto line = read_line(deadline);
    if (!line.ok()) return line.error().context("waiting for QMP event " + std::string(name));
    json msg = internal::parse_json(*line);
    size_t before = events_.size();
    if (!msg.is_object()) return qemu_error("malformed QMP message: " + line->substr(0, 200));
    if (msg.contains("event")) remember_event(msg["event"].is_string() ? msg["event"].get<std::string>() : "", msg.contains("data") ? msg["data"].dump() : "{}");
    if (events_.size() < before) seen = seen >= 500 ? seen - 500 : 0;  // the oldest were dropped
  }
}

}  // namespace dstackvmm
