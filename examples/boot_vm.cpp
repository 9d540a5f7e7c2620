// SPDX-License-Identifier: Apache-2.0
// Example: boot a VM with libdstackvmm alone (no daemon), wait until the guest says it has
// booted, then shut it down gracefully and wait until it has stopped. Every wait is on an
// event, none is a sleep. Built against an installed library with
//   c++ -std=c++20 boot_vm.cpp $(pkg-config --cflags --libs dstackvmm-server)
//   boot_vm RUN_DIR IMAGE_DIR   (IMAGE_DIR as printed by tests/guest/build-image.sh)
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>

#include <dstackvmm/dstackvmm.hpp>
#include <dstackvmm/server/host_api_server.hpp>

using namespace dstackvmm;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: boot_vm RUN_DIR IMAGE_DIR\n";
    return 2;
  }
  std::filesystem::path image = std::filesystem::absolute(argv[2]);
  ManagerOptions options;
  options.config.run_path = std::filesystem::absolute(argv[1]).string();
  options.config.image.path = image.parent_path().string();
  options.config.cvm.platform = Platform::kNone;  // no TEE on a development host
  options.config.cvm.accel = Accel::kAuto;  // KVM when usable, else TCG
  options.config.cvm.qmp_socket = true;
  auto vmm = VmManager::open(options);
  if (!vmm.ok()) {
    std::cerr << vmm.error().message << '\n';
    return 1;
  }
  // Guests report their boot through the host API; the server for it is the engine's client.
  auto host_api = server::HostApiServer::start(**vmm);
  if (!host_api.ok()) {
    std::cerr << host_api.error().message << '\n';
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::string progress;
  auto subscription = (*vmm)->subscribe([&](const VmEvent& e) {
    if (e.kind != VmEvent::Kind::kGuest || e.guest_event.event != "boot.progress") return;
    std::lock_guard lock(mu);
    progress = e.guest_event.body;
    cv.notify_all();
  });

  VmConfiguration vm;
  vm.name = "example";
  vm.image = image.filename().string();
  vm.compose_file = R"({"manifest_version":2,"name":"example","runner":"docker-compose"})";
  vm.memory = 256;
  vm.disk_size = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto id = (*vmm)->create(vm);
  if (!id.ok()) {
    std::cerr << id.error().message << '\n';
    return 1;
  }
  std::cout << "created " << *id << '\n';
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 120s, [&] { return progress == "done"; });
  }
  auto info = (*vmm)->info(*id);
  std::cout << "status " << vm_status_name(info->status) << ", boot progress " << info->boot_progress << " after "
            << secs() << " s\n";
  t0 = std::chrono::steady_clock::now();
  if (auto s = (*vmm)->shutdown(*id); !s.ok()) std::cerr << s.error().message << '\n';
  auto stopped = (*vmm)->wait_for(*id, VmStatus::kStopped, std::chrono::steady_clock::now() + 60s);
  std::cout << "status " << (stopped.ok() ? vm_status_name(*stopped) : stopped.error().message) << " after " << secs()
            << " s\n";
  if (!(*vmm)->remove(*id).ok()) return 1;
  (void)(*vmm)->wait_for(*id, [](VmStatus) { return false; }, std::chrono::steady_clock::now() + 60s);  // until gone
  return stopped.ok() && info->boot_progress == "done" ? 0 : 1;
}
