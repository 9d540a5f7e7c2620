// SPDX-License-Identifier: Apache-2.0
#include "vm/vm_checks.hpp"

#include <array>
#include <set>

namespace dstackvmm::internal {

namespace {
Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }
}  // namespace

Status check_limits(const CvmConfig& c, uint32_t vcpu, uint32_t memory, uint32_t disk) {
  if (vcpu == 0) return invalid("vcpu must be greater than zero");
  if (memory == 0) return invalid("memory must be greater than zero");
  if (disk == 0) return invalid("disk_size must be greater than zero");
  if (vcpu > c.max_allocable_vcpu)
    return invalid("vcpu " + std::to_string(vcpu) + " exceeds the limit of " + std::to_string(c.max_allocable_vcpu) +
                   " per VM (cvm.max_allocable_vcpu)");
  if (memory > c.max_allocable_memory_in_mb)
    return invalid("memory " + std::to_string(memory) + " MB exceeds the limit of " +
                   std::to_string(c.max_allocable_memory_in_mb) + " MB per VM (cvm.max_allocable_memory_in_mb)");
  if (disk > c.max_disk_size)
    return invalid("disk_size " + std::to_string(disk) + " GB exceeds the limit of " + std::to_string(c.max_disk_size) +
                   " GB per VM (cvm.max_disk_size)");
  return {};
}

// Upstream cannot start images before 0.5.0 (no sys-config for them): refused when the VM is
// made or moved to one, not only at its first start.
Status check_image_can_start(const Image& image) {
  auto version = parse_image_version(image.version);
  if (version && *version >= std::array<uint16_t, 3>{0, 5, 0}) return {};
  return make_error(ErrorCode::kFailedPrecondition,
                    "Unsupported image version '" + image.version + "' of image " + image.name + " (need >= 0.5.0)");
}

// An encrypted env is ephemeral X25519 key (32) + nonce (12) + AES-GCM ciphertext and tag (16
// or more): anything shorter cannot be one, and a guest would boot without its environment.
Status check_encrypted_env(const std::string& env) {
  if (env.empty() || env.size() >= 60) return {};
  return invalid("encrypted_env is " + std::to_string(env.size()) +
                 " bytes, not an encrypted env (X25519 key, nonce and AES-GCM ciphertext: at least 60 bytes); "
                 "encrypt it with vmmctl deploy --env-file, or leave it out");
}

// Port mappings ride on a user-mode NIC (QEMU hostfwd): a VM with bridge NICs only would get
// none of them.
Status check_ports_reachable(const std::vector<PortMapping>& ports, const std::vector<NetworkSpec>& networks) {
  if (ports.empty() || networks.empty()) return {};  // no NICs requested: the node default decides at start
  for (const auto& n : networks)
    if (n.mode == "user") return {};
  return invalid("port mappings need a user-mode network (QEMU forwards them on it), and this VM has only " +
                 networks.front().mode + " networking; add a user network or map no ports");
}

Status check_networks(const std::vector<NetworkSpec>& networks) {
  for (const auto& n : networks) {
    if (n.mode.empty()) return invalid(n.bridge.empty() ? "networking mode is required" : "networking mode is required when bridge is set");
    if (n.mode == "custom") return invalid("custom networking mode is manifest-only");
    if (n.mode != "user" && n.mode != "bridge") return invalid("unsupported networking mode '" + n.mode + "'");
    if (n.mode != "bridge" && !n.bridge.empty()) return invalid("bridge_name is only valid for bridge networking mode");
  }
  return {};
}

Status check_simulated_tee(const CvmConfig& c, const std::string& variant) {
  static const std::set<std::string> kVariants{"dstack-tdx", "dstack-gcp-tdx", "dstack-nitro-enclave", "dstack-amd-sev-snp",
                                               "dstack-aws-nitro-tpm"};
  if (!kVariants.count(variant))
    return invalid("unsupported TEE variant: " + variant +
                   " (dstack-tdx, dstack-gcp-tdx, dstack-nitro-enclave, dstack-amd-sev-snp or dstack-aws-nitro-tpm)");
  if (!c.tee_simulator)
    return make_error(ErrorCode::kFailedPrecondition,
                      "tee simulator credentials are not configured on this VMM (add a [cvm.tee_simulator] table)");
  return {};
}

}  // namespace dstackvmm::internal
