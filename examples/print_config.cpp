// SPDX-License-Identifier: Apache-2.0
// Example: load a vmm.toml with libdstackvmm and print where the VMs would live.
#include <iostream>

#include <dstackvmm/dstackvmm.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: print_config vmm.toml\n";
    return 2;
  }
  std::vector<dstackvmm::ConfigDiagnostic> diagnostics;
  auto config = dstackvmm::load_config(argv[1], &diagnostics);
  for (const auto& d : diagnostics) std::cerr << d.to_string() << '\n';
  if (!config.ok()) return 1;
  std::cout << "run_path: " << config->run_path << "\nimage path: " << config->image.path
            << "\nCID pool: " << config->cvm.cid_start << ".."
            << config->cvm.cid_start + config->cvm.cid_pool_size - 1 << '\n';
  return 0;
}
