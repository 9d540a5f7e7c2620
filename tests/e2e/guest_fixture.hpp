// SPDX-License-Identifier: Apache-2.0
// A VmManager on a private run_path with the test guest image: what every e2e test starts from.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <httplib.h>

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

  explicit GuestFixture(std::function<void(Config&)> tweak = {}) {
    REQUIRE_FALSE(image.empty());
    Config c;
    c.run_path = (dir.path() / "vms").string();
    c.image.path = image.parent_path().string();
    c.cvm.platform = "none";
    c.cvm.accel = "tcg";
    c.cvm.guest_channel = "user-net";  // the busybox guest speaks HTTP, not vsock
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
  }

  ~GuestFixture() {
    // Never leave a guest behind, whatever the test did.
    for (const auto& vm : vmm->list()) (void)vmm->stop(vm.id);
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
