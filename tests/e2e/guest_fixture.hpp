// SPDX-License-Identifier: Apache-2.0
// A VmManager on a private run_path with the test guest image: what every e2e test starts from.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <dstackvmm/server/host_api_server.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "../support/guest_image.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

namespace dstackvmm::testing {

using namespace std::chrono_literals;

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string http_get(uint16_t port, const std::string& path = "/") {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  c.set_read_timeout(2, 0);
  auto r = c.Get(path.c_str());
  return r && r->status == 200 ? r->body : "";
}

inline std::string compose(const std::string& name) {
  return R"({"manifest_version":2,"name":")" + name + R"(","runner":"docker-compose","docker_compose_file":"services: {}"})";
}

struct GuestFixture {
  TempDir dir{"e2e"};
  std::filesystem::path image = test_guest_image();
  std::unique_ptr<VmManager> vmm;
  std::unique_ptr<server::HostApiServer> host_api;  // guests report boot progress through it
  // Guest notifications seen so far, for waits on them (filled by a subscription).
  std::mutex events_mu;
  std::condition_variable events_cv;
  std::vector<std::pair<std::string, GuestEvent>> guest_events;
  Subscription events_sub;

  explicit GuestFixture(std::function<void(Config&)> tweak = {}) {
    REQUIRE_FALSE(image.empty());
    Config c;
    c.run_path = (dir.path() / "vms").string();
    c.image.path = image.parent_path().string();
    c.cvm.platform = Platform::kNone;
    c.cvm.accel = Accel::kTcg;
    c.cvm.guest_channel = GuestChannelMode::kUserNet;  // the busybox guest speaks HTTP, not vsock
    c.cvm.qmp_socket = true;
    c.cvm.port_mapping.enabled = true;
    c.cvm.port_mapping.range = {{"tcp", 1024, 65535}};
    c.event_buffer_size = 20;
    if (tweak) tweak(c);
    ManagerOptions o;
    o.config = c;
    auto m = VmManager::open(o);
    INFO((m.ok() ? "" : m.error().message));
    REQUIRE(m.ok());
    vmm = std::move(*m);
    auto server = server::HostApiServer::start(*vmm);
    REQUIRE(server.ok());
    host_api = std::move(*server);
    events_sub = vmm->subscribe([this](const VmEvent& e) {
      if (e.kind != VmEvent::Kind::kGuest) return;
      std::lock_guard lock(events_mu);
      guest_events.emplace_back(e.id, e.guest_event);
      events_cv.notify_all();
    });
  }

  ~GuestFixture() {
    events_sub.reset();
    host_api.reset();
    // Never leave a guest behind, whatever the test did.
    for (const auto& vm : vmm->list()) (void)vmm->stop(vm.id);
  }

  // Waits for the guest's notification `event` with `payload` (from its boot since `after`
  // events were seen; 0 = any).
  bool wait_guest_event(const std::string& id, const std::string& event, const std::string& payload,
                        std::chrono::milliseconds timeout, size_t after = 0) {
    std::unique_lock lock(events_mu);
    return events_cv.wait_for(lock, timeout, [&] {
      for (size_t i = after; i < guest_events.size(); ++i)
        if (guest_events[i].first == id && guest_events[i].second.event == event && guest_events[i].second.body == payload)
          return true;
      return false;
    });
  }
  size_t guest_events_seen() {
    std::lock_guard lock(events_mu);
    return guest_events.size();
  }

  // Waits on the manager's events for the VM's status.
  bool wait_status(const std::string& id, VmStatus status, std::chrono::milliseconds timeout) {
    return vmm->wait_for(id, status, std::chrono::steady_clock::now() + timeout).ok();
  }

  VmConfiguration guest(const std::string& name, uint16_t host_port) const {
    VmConfiguration c;
    c.name = name;
    c.image = image.filename().string();
    c.compose_file = compose(name);
    c.vcpu = 1;
    c.memory = 256;
    c.disk_size = 1;
    if (host_port) c.ports = {{"tcp", "127.0.0.1", host_port, 80}};
    return c;
  }

  VmStatus status(const std::string& id) const {
    auto i = vmm->info(id);
    return i.ok() ? i->status : VmStatus::kRemoving;
  }

  std::string serial_tail(const std::string& id) const {
    std::ifstream in(dir.path() / "vms" / id / "serial.log");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }
};

}  // namespace dstackvmm::testing
