// SPDX-License-Identifier: Apache-2.0
// The host API on vsock: one listener for all VMs, each caller named by its peer CID.
#include "vsock_host_api.hpp"

#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <dstackvmm/log.hpp>

namespace dstackvmm::internal {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxBody = 2u << 20;

bool read_more(int fd, std::string& buf, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  pollfd p{fd, POLLIN, 0};
  if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char chunk[8192];
  ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buf.append(chunk, static_cast<size_t>(n));
  return true;
}

void reply(int fd, int status, const std::string& body) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n" + body;
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void serve_host_api_connection(int fd, const std::string& vm_id, const HostApiHandler& handler) {
  auto deadline = Clock::now() + std::chrono::seconds(30);
  std::string buf;
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHead || !read_more(fd, buf, deadline)) return;
  }
  std::string head = buf.substr(0, head_end);
  std::string body = buf.substr(head_end + 4);
  std::string line = head.substr(0, head.find("\r\n"));
  auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return reply(fd, 400, "{\"error\":\"malformed request line\"}");
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  if (path.rfind("/api/", 0) != 0 || path.size() == 5 || path.find('/', 5) != std::string::npos)
    return reply(fd, 404, "{\"error\":\"not found\"}");
  size_t length = 0;
  std::string lower = head;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) length = std::strtoul(lower.c_str() + at + 17, nullptr, 10);
  if (length > kMaxBody) return reply(fd, 400, "{\"error\":\"failed to read data: payload too large\"}");
  while (body.size() < length)
    if (!read_more(fd, body, deadline)) return;
  body.resize(length);
  auto [status, out] = handler(vm_id, path.substr(5), body);
  reply(fd, status, out);
}

std::optional<uint32_t> parse_vsock_cid(const std::string& address) {
  if (address.rfind("vsock:", 0) != 0) return std::nullopt;
  std::string cid = address.substr(6);
  try {
    size_t used = 0;
    unsigned long v = std::stoul(cid, &used, cid.rfind("0x", 0) == 0 ? 16 : 10);
    if (used != cid.size() || v > 0xffffffffUL) return std::nullopt;
    return static_cast<uint32_t>(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct VsockHostApi::Impl {
  int fd = -1;
  std::atomic<bool> stopping{false};
  std::thread thread;
  HostApiHandler handler;
  std::function<std::optional<std::string>(uint32_t)> vm_for_cid;
  // Connections are served on their own threads (a GetSealingKey may wait on the key
  // provider); destruction waits for them, each bounded by its 30 s deadline.
  std::mutex mu;
  std::condition_variable idle;
  int active = 0;
};

VsockHostApi::VsockHostApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

VsockHostApi::~VsockHostApi() {
  impl_->stopping = true;
  ::shutdown(impl_->fd, SHUT_RDWR);
  if (impl_->thread.joinable()) impl_->thread.join();
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [&] { return impl_->active == 0; });
  ::close(impl_->fd);
}

Result<std::unique_ptr<VsockHostApi>> VsockHostApi::start(uint32_t cid, uint32_t port,
                                                          std::function<std::optional<std::string>(uint32_t)> vm_for_cid,
                                                          HostApiHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  if (impl->fd < 0 || ::bind(impl->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(impl->fd, 64) != 0) {
    std::string why = std::strerror(errno);
    if (impl->fd >= 0) ::close(impl->fd);
    return make_error(ErrorCode::kIo, "cannot listen on vsock:" + std::to_string(cid) + ":" + std::to_string(port) + ": " + why);
  }
  impl->handler = std::move(handler);
  impl->vm_for_cid = std::move(vm_for_cid);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    while (!raw->stopping) {
      sockaddr_vm peer{};
      socklen_t len = sizeof peer;
      int conn = ::accept4(raw->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (conn < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;  // shut down
      }
      auto vm = raw->vm_for_cid(peer.svm_cid);
      if (!vm) {
        log_message(LogLevel::kWarn, "host-api", "refusing vsock peer CID " + std::to_string(peer.svm_cid) + ": no such VM");
        ::close(conn);
        continue;
      }
      {
        std::lock_guard lock(raw->mu);
        ++raw->active;
      }
      std::thread([raw, conn, id = *vm] {
        serve_host_api_connection(conn, id, raw->handler);
        ::close(conn);
        std::lock_guard lock(raw->mu);
        if (--raw->active == 0) raw->idle.notify_all();
      }).detach();
    }
  });
  return std::unique_ptr<VsockHostApi>(new VsockHostApi(std::move(impl)));
}

}  // namespace dstackvmm::internal
