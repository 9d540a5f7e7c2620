// SPDX-License-Identifier: Apache-2.0
// A program that talks to a running daemon through libdstackvmm-client: lists its VMs.
//   list_vms [URL]      (default: unix:./vmm.sock)
#include <iostream>

#include <dstackvmm/client/vmm_client.hpp>

int main(int argc, char** argv) {
  dstackvmm::client::ClientOptions options;
  options.url = argc > 1 ? argv[1] : "unix:./vmm.sock";
  auto client = dstackvmm::client::VmmClient::create(options);
  if (!client.ok()) {
    std::cerr << client.error().message << "\n";
    return 1;
  }
  auto vms = client->vms({.brief = true});
  if (!vms.ok()) {
    std::cerr << vms.error().message << "\n";
    return 1;
  }
  for (const auto& vm : *vms) std::cout << vm.id << "  " << vm.name << "  " << dstackvmm::vm_status_name(vm.status) << "\n";
  return 0;
}
