// SPDX-License-Identifier: Apache-2.0
// The host API server: one epoll loop for every listener and connection, a fixed pool of
// workers for the calls. The loop never blocks and never calls into the engine; workers do.
#include <dstackvmm/server/host_api_server.hpp>

#include <linux/vm_sockets.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <dstackvmm/log.hpp>

#include "base/job_queue.hpp"
#include "guest/guest_http.hpp"
#include "rpc/host_api.hpp"
#include "server/vsock_address.hpp"

namespace dstackvmm::server {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kWriteTime = std::chrono::seconds(5);
constexpr size_t kReadChunk = 64 * 1024;

struct Conn {
  int fd = -1;
  std::string vm;
  bool persistent = false;  // QEMU's guestfwd stream carries request after request
  std::string in, out;
  size_t out_done = 0;
  bool busy = false;         // a call runs on a worker
  bool close_after = false;  // once `out` is written
  bool peer_closed = false;  // the peer sent all it will send (a request may still be answered)
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point last_used;
  uint64_t serial = 0;  // matches a worker's answer to this connection (fds are reused)
};

struct Listener {
  int fd = -1;
  std::string vm;
  std::filesystem::path path;
};

struct Done {
  int fd;
  uint64_t serial;
  int status;
  std::string body;
};

}  // namespace

struct HostApiServer::Impl {
  VmManager* vmm = nullptr;
  HostApiServerOptions opt;
  internal::GuestHttpLimits limits;
  int ep = -1, wake = -1, vsock = -1;
  std::thread loop;
  std::unique_ptr<internal::JobQueue> workers;
  Subscription sub;

  std::mutex mu;  // guards everything below up to `stopping`
  std::condition_variable cmd_done;
  std::deque<std::function<void()>> commands;
  uint64_t commands_posted = 0, commands_run = 0;
  std::deque<Done> done;
  std::map<uint32_t, std::string> vm_by_cid;
  bool stopping = false;
  std::atomic<size_t> n_conns{0}, n_listeners{0};

  // Loop thread only.
  std::unordered_map<int, Conn> conns;
  std::unordered_map<int, Listener> listeners;  // by fd
  std::map<std::string, int> listener_of;       // vm id -> fd
  uint64_t next_serial = 1;

  void poke() {
    uint64_t one = 1;
    (void)!::write(wake, &one, sizeof one);
  }

  // Runs `fn` on the loop thread and waits for it (an event callback must have the socket
  // listening before it returns: QEMU connects right after).
  void on_loop(std::function<void()> fn) {
    std::unique_lock lock(mu);
    if (stopping) return;
    commands.push_back(std::move(fn));
    uint64_t mine = ++commands_posted;
    poke();
    cmd_done.wait(lock, [&] { return commands_run >= mine || stopping; });
  }

  void add(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  void modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
  }

  void listen_for(const std::string& id, const std::filesystem::path& path) {
    if (listener_of.count(id)) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof addr.sun_path) {
      log_message(LogLevel::kError, "host-api", "VM " + id + ": socket path too long: " + path.string());
      return;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::unlink(path.c_str());
    mode_t old = ::umask(0177);  // only the daemon's user (QEMU runs as it) may connect
    bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 16) == 0;
    ::umask(old);
    if (!ok) {
      log_message(LogLevel::kError, "host-api", "VM " + id + ": cannot listen on " + path.string() + ": " + std::strerror(errno));
      if (fd >= 0) ::close(fd);
      return;
    }
    listeners[fd] = {fd, id, path};
    listener_of[id] = fd;
    add(fd, EPOLLIN);
    n_listeners = listeners.size();
  }

  void drop_vm(const std::string& id) {
    if (auto it = listener_of.find(id); it != listener_of.end()) {
      int fd = it->second;
      ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      ::unlink(listeners[fd].path.c_str());
      ::close(fd);
      listeners.erase(fd);
      listener_of.erase(it);
      n_listeners = listeners.size();
    }
    std::vector<int> gone;
    for (auto& [fd, c] : conns)
      if (c.vm == id) gone.push_back(fd);
    for (int fd : gone) close_conn(fd);
  }

  void close_conn(int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns.erase(fd);
    n_conns = conns.size();
  }

  void accept_on(int listen_fd, const std::string* vm_of_listener) {
    for (;;) {
      sockaddr_vm peer{};
      socklen_t len = sizeof peer;
      int fd = ::accept4(listen_fd, vm_of_listener ? nullptr : reinterpret_cast<sockaddr*>(&peer),
                         vm_of_listener ? nullptr : &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;  // EAGAIN: all taken
      std::string vm;
      if (vm_of_listener) {
        vm = *vm_of_listener;
      } else {
        std::lock_guard lock(mu);
        auto it = vm_by_cid.find(peer.svm_cid);
        if (it != vm_by_cid.end()) vm = it->second;
      }
      if (vm.empty()) {
        log_message(LogLevel::kWarn, "host-api", "refusing vsock peer CID " + std::to_string(peer.svm_cid) + ": no such VM");
        ::close(fd);
        continue;
      }
      if (conns.size() >= opt.max_connections || !make_room(vm)) {
        ::close(fd);
        continue;
      }
      Conn& c = conns[fd];
      c.fd = fd;
      c.vm = vm;
      c.persistent = vm_of_listener != nullptr;
      c.last_used = Clock::now();
      // A guest's own (vsock) connection must send its request promptly; QEMU's stream may idle.
      if (!c.persistent) c.deadline = Clock::now() + limits.request_time;
      add(fd, EPOLLIN | EPOLLRDHUP);
      n_conns = conns.size();
    }
  }

  // Keeps one VM within its share: the longest idle of its connections makes way for a new
  // one (QEMU reconnecting must win over connections nobody uses).
  bool make_room(const std::string& vm) {
    size_t mine = 0;
    int oldest = -1;
    for (auto& [fd, c] : conns) {
      if (c.vm != vm) continue;
      ++mine;
      if (!c.busy && (oldest < 0 || c.last_used < conns[oldest].last_used)) oldest = fd;
    }
    if (mine < opt.max_per_vm) return true;
    if (oldest < 0) return false;
    close_conn(oldest);
    return true;
  }

  void read_from(Conn& c) {
    int fd = c.fd;
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > limits.max_head + limits.max_body + kReadChunk) break;  // parse refuses it
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n < 0) {
        close_conn(fd);
        return;
      }
      // EOF: a peer that sends its request and then shuts its side still gets the answer.
      c.peer_closed = true;
      break;
    }
    process(c);
    auto it = conns.find(fd);
    if (it != conns.end() && it->second.peer_closed && !it->second.busy && it->second.out.empty()) close_conn(fd);
  }

  // Takes the next request off `c.in`, if whole, and hands it to a worker.
  void process(Conn& c) {
    if (c.busy || c.close_after) return;
    internal::GuestHttpRead r = internal::parse_guest_request(c.in, limits);
    if (r.outcome == internal::GuestHttpRead::Outcome::kNeedMore) {
      if (!c.in.empty() && c.deadline == Clock::time_point::max()) c.deadline = Clock::now() + limits.request_time;
      return;
    }
    if (r.outcome == internal::GuestHttpRead::Outcome::kBad) {
      // After a malformed request the stream cannot be trusted to be in step: answer, close.
      reply(c, r.status, internal::bad_request_body(r), true);
      return;
    }
    c.busy = true;
    c.deadline = Clock::time_point::max();  // the call bounds itself (key provider: 30 s)
    c.serial = next_serial++;
    // Nothing is read while the call runs; a peer gone entirely still shows as EPOLLHUP.
    modify(c.fd, 0);
    workers->post([this, fd = c.fd, serial = c.serial, vm = c.vm, request = std::move(r.request)] {
      std::pair<int, std::string> out;
      try {
        out = internal::route_guest_request(request, [&](const std::string& method, const std::string& body) {
          return rpc::handle_host_api(*vmm, vm, method, body);
        });
      } catch (const std::exception& e) {
        out = {500, std::string("{\"error\":\"internal error\"}")};
        log_message(LogLevel::kError, "host-api", std::string("VM ") + vm + ": " + e.what());
      }
      std::lock_guard lock(mu);
      done.push_back({fd, serial, out.first, std::move(out.second)});
      poke();
    });
  }

  void reply(Conn& c, int status, const std::string& body, bool close) {
    c.close_after = close || !c.persistent || c.peer_closed;
    c.out = internal::format_guest_reply(status, body, !c.close_after);
    c.out_done = 0;
    c.deadline = Clock::now() + kWriteTime;
    write_to(c);
  }

  void write_to(Conn& c) {
    while (c.out_done < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_done, c.out.size() - c.out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        modify(c.fd, EPOLLOUT);
        return;
      }
      close_conn(c.fd);
      return;
    }
    if (c.close_after) {
      close_conn(c.fd);
      return;
    }
    c.out.clear();
    c.out_done = 0;
    c.busy = false;
    c.last_used = Clock::now();
    c.deadline = Clock::time_point::max();
    modify(c.fd, EPOLLIN | EPOLLRDHUP);
    process(c);  // a request that came right behind the last one
  }

  void expire(Clock::time_point now) {
    std::vector<int> late;
    for (auto& [fd, c] : conns)
      if (c.deadline <= now) late.push_back(fd);
    for (int fd : late) {
      Conn& c = conns[fd];
      if (!c.in.empty() && c.out.empty() && !c.busy) {
        // Best effort: a 408 if the socket takes it at once, then closed either way.
        std::string out = internal::format_guest_reply(408, "{\"error\":\"request not complete within the time limit\"}", false);
        (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      close_conn(fd);
    }
  }

  int next_timeout_ms(Clock::time_point now) const {
    auto first = Clock::time_point::max();
    for (const auto& [fd, c] : conns) first = std::min(first, c.deadline);
    if (first == Clock::time_point::max()) return -1;
    return static_cast<int>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(first - now).count() + 1));
  }

  void run() {
    epoll_event events[64];
    for (;;) {
      int n = ::epoll_wait(ep, events, 64, next_timeout_ms(Clock::now()));
      if (n < 0 && errno != EINTR) return;
      for (int i = 0; i < std::max(n, 0); ++i) {
        int fd = events[i].data.fd;
        uint32_t ev = events[i].events;
        if (fd == wake) {
          uint64_t v;
          (void)!::read(wake, &v, sizeof v);
          continue;
        }
        if (fd == vsock) {
          accept_on(fd, nullptr);
          continue;
        }
        if (auto l = listeners.find(fd); l != listeners.end()) {
          std::string vm = l->second.vm;
          accept_on(fd, &vm);
          continue;
        }
        auto it = conns.find(fd);
        if (it == conns.end()) continue;
        Conn& c = it->second;
        if (ev & (EPOLLERR | EPOLLHUP)) {
          close_conn(fd);
          continue;
        }
        if (ev & EPOLLOUT) {
          write_to(c);
          continue;
        }
        if (ev & EPOLLIN) {
          read_from(c);
          continue;
        }
        if (ev & EPOLLRDHUP) read_from(c);  // reads the rest, then sees EOF
      }
      std::deque<std::function<void()>> todo;
      std::deque<Done> answers;
      {
        std::lock_guard lock(mu);
        if (stopping) return;
        todo.swap(commands);
        answers.swap(done);
      }
      for (auto& fn : todo) fn();
      if (!todo.empty()) {
        std::lock_guard lock(mu);
        commands_run += todo.size();
        cmd_done.notify_all();
      }
      for (auto& a : answers) {
        auto it = conns.find(a.fd);
        if (it == conns.end() || it->second.serial != a.serial || !it->second.busy) continue;  // peer left
        reply(it->second, a.status, a.body, false);
      }
      expire(Clock::now());
    }
  }

  void on_event(const VmEvent& e) {
    using K = VmEvent::Kind;
    bool live = e.status == VmStatus::kRunning || e.status == VmStatus::kStopping || e.status == VmStatus::kUnknown;
    bool serve = e.kind == K::kLaunching || ((e.kind == K::kSnapshot || e.kind == K::kStatus) && live);
    if (e.kind == K::kRemoved || e.status == VmStatus::kRemoving) serve = false;
    bool served;  // before this event: the CID map says what the loop was last told
    {
      std::lock_guard lock(mu);
      auto it = vm_by_cid.find(e.cid);
      served = it != vm_by_cid.end() && it->second == e.id;
      if (serve) vm_by_cid[e.cid] = e.id;
      else if (served) vm_by_cid.erase(it);
    }
    if (e.host_api_socket.empty()) return;  // vsock: the CID map is all there is
    // Only a change is taken to the loop: the call waits for its thread, and a stop's event
    // (running -> stopping, both served) waited up to ~3 ms for it on a busy host.
    if (serve == served) return;
    // A VM whose QEMU is gone needs no socket (and no threads, fds or connections).
    if (serve) on_loop([this, id = e.id, path = e.host_api_socket] { listen_for(id, path); });
    else if (e.kind != K::kSnapshot) on_loop([this, id = e.id] { drop_vm(id); });
  }
};

HostApiServer::HostApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HostApiServer::~HostApiServer() {
  impl_->sub.reset();  // no event after this (an event in delivery finishes first)
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->cmd_done.notify_all();
  }
  impl_->poke();
  if (impl_->loop.joinable()) impl_->loop.join();
  impl_->workers->drain();  // answers to nobody: the loop is gone
  for (auto& [fd, c] : impl_->conns) ::close(fd);
  for (auto& [fd, l] : impl_->listeners) {
    ::unlink(l.path.c_str());
    ::close(fd);
  }
  if (impl_->vsock >= 0) ::close(impl_->vsock);
  ::close(impl_->ep);
  ::close(impl_->wake);
}

Result<std::unique_ptr<HostApiServer>> HostApiServer::start(VmManager& vmm, HostApiServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->vmm = &vmm;
  impl->opt = options;
  impl->workers = std::make_unique<internal::JobQueue>(std::max<size_t>(1, options.workers));
  impl->ep = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->ep < 0 || impl->wake < 0) {
    if (impl->ep >= 0) ::close(impl->ep);
    if (impl->wake >= 0) ::close(impl->wake);
    return make_error(ErrorCode::kIo, std::string("host API: ") + std::strerror(errno));
  }
  impl->add(impl->wake, EPOLLIN);
  if (vmm.guest_channel() == GuestChannel::Kind::kVsock) {
    const auto& api = vmm.config().host_api;
    auto cid = internal::parse_vsock_cid(api.address).value_or(2);
    auto fd = internal::listen_vsock(cid, api.port);
    if (fd.ok()) {
      impl->vsock = *fd;
      impl->add(impl->vsock, EPOLLIN);
    } else {
      log_message(LogLevel::kError, "host-api", fd.error().message + "; guests cannot report boot progress");
    }
  }
  Impl* raw = impl.get();
  impl->loop = std::thread([raw] { raw->run(); });
  std::unique_ptr<HostApiServer> server(new HostApiServer(std::move(impl)));
  raw->sub = vmm.subscribe([raw](const VmEvent& e) { raw->on_event(e); });
  return server;
}

size_t HostApiServer::connections() const { return impl_->n_conns; }
size_t HostApiServer::listeners() const { return impl_->n_listeners; }

}  // namespace dstackvmm::server
