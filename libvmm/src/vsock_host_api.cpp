// SPDX-License-Identifier: Apache-2.0
// The host API on vsock: one listener for all VMs, each caller named by its peer CID.
#include "vsock_host_api.hpp"

#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <dstackvmm/log.hpp>

#include "guest_http.hpp"

namespace dstackvmm::internal {

namespace {
// Each connection is served on a thread of its own (a GetSealingKey may wait on the key
// provider); past this many at once, further connections are closed at once.
constexpr int kMaxConnections = 64;
constexpr int kMaxPerVm = 4;  // one guest cannot take the others' share
}  // namespace

void serve_host_api_connection(int fd, const std::string& vm_id, const HostApiHandler& handler) {
  serve_guest_api(fd, [&](const std::string& method, const std::string& body) { return handler(vm_id, method, body); },
                  /*persistent=*/false, /*stop_fd=*/-1);
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
  std::map<std::string, int> per_vm;
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
        if (raw->active >= kMaxConnections || raw->per_vm[*vm] >= kMaxPerVm) {
          ::close(conn);
          continue;
        }
        ++raw->active;
        ++raw->per_vm[*vm];
      }
      std::thread([raw, conn, id = *vm] {
        serve_host_api_connection(conn, id, raw->handler);
        ::close(conn);
        std::lock_guard lock(raw->mu);
        if (--raw->per_vm[id] == 0) raw->per_vm.erase(id);
        if (--raw->active == 0) raw->idle.notify_all();
      }).detach();
    }
  });
  return std::unique_ptr<VsockHostApi>(new VsockHostApi(std::move(impl)));
}

}  // namespace dstackvmm::internal
