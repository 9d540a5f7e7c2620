// SPDX-License-Identifier: Apache-2.0
// Example: boot a VM with libdstackvmm, wait for it to run, then shut it down gracefully.
//   boot_vm RUN_DIR IMAGE_DIR   (IMAGE_DIR as printed by tests/guest/build-image.sh)
#include <chrono>
#include <iostream>
#include <thread>

#include <dstackvmm/dstackvmm.hpp>

using namespace dstackvmm;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: boot_vm RUN_DIR IMAGE_DIR\n";
    return 2;
  }
  std::filesystem::path image = std::filesystem::absolute(argv[2]);
  ManagerOptions options;
  options.config.run_path = std::filesystem::absolute(argv[1]).string();
  options.config.image.path = image.parent_path().string();
  options.config.cvm.platform = "none";  // no TEE on a development host
  options.config.cvm.accel = "auto";     // KVM when usable, else TCG
  options.config.cvm.qmp_socket = true;
  auto vmm = VmManager::open(options);
  if (!vmm.ok()) {
    std::cerr << vmm.error().message << '\n';
    return 1;
  }
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
  for (int i = 0; i < 600; ++i) {  // up to a minute for the guest to report "done"
    auto info = (*vmm)->info(*id);
    if (info.ok() && info->boot_progress == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto info = (*vmm)->info(*id);
  std::cout << "status " << vm_status_name(info->status) << ", boot progress " << info->boot_progress
            << " after " << secs() << " s\n";
  t0 = std::chrono::steady_clock::now();
  (void)(*vmm)->shutdown(*id);
  for (int i = 0; i < 300 && (*vmm)->info(*id)->status != VmStatus::kStopped; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cout << "status " << vm_status_name((*vmm)->info(*id)->status) << " after " << secs() << " s\n";
  return (*vmm)->remove(*id).ok() ? 0 : 1;
}
