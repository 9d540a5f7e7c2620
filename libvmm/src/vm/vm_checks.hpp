// SPDX-License-Identifier: Apache-2.0
// What create and update accept, checked the same way for both (each error names the field
// and the limit, and how to fix it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm::internal {

// vcpu, memory and disk: not zero, and within [cvm] max_allocable_vcpu, max_allocable_memory_in_mb, max_disk_size.
Status check_limits(const CvmConfig& c, uint32_t vcpu, uint32_t memory, uint32_t disk);
// Upstream cannot start images before 0.5.0 (no sys-config for them): refused when the VM is
// made or moved to one, not only at its first start.
Status check_image_can_start(const Image& image);
// An encrypted env is ephemeral X25519 key (32) + nonce (12) + AES-GCM ciphertext and tag (16
// or more): anything shorter cannot be one, and a guest would boot without its environment.
Status check_encrypted_env(const std::string& env);
// Port mappings ride on a user-mode NIC (QEMU hostfwd): a VM with bridge NICs only would get
// none of them.
Status check_ports_reachable(const std::vector<PortMapping>& ports, const std::vector<NetworkSpec>& networks);
// Requested NICs: user or bridge (custom is manifest-only), bridge_name only on bridge.
Status check_networks(const std::vector<NetworkSpec>& networks);
// CreateVm's simulated_tee: one of upstream's variants, on a VMM with [cvm.tee_simulator].
Status check_simulated_tee(const CvmConfig& c, const std::string& variant);

}  // namespace dstackvmm::internal
