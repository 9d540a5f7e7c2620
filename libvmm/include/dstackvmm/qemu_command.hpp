// SPDX-License-Identifier: Apache-2.0
// The QEMU argv for a VM: a pure function of the config and resolved inputs (no IO), so it can
// be pinned by golden tests for TDX and SEV-SNP hosts we cannot run here.
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/mr_config.hpp>  // mrconfigid_v1, which QemuInputs::mrconfigid holds

namespace dstackvmm {

// How host and guest talk: upstream's vsock (host API on CID 2, agent on <cid>:8000), or,
// where /dev/vhost-vsock is missing, user networking: a guestfwd from the guest's host-API
// address to a per-VM unix socket (the socket identifies the VM) and a hostfwd from a private
// loopback port to the agent's port 8000.
struct GuestChannel {
  enum class Kind { kVsock, kUserNet };
  Kind kind = Kind::kVsock;
  uint16_t agent_port = 0;                     // kUserNet
  std::filesystem::path host_api_socket;       // kUserNet
  static constexpr const char* kGuestHostApiIp = "10.0.2.100";  // in the slirp network
};

struct SevSnpParams {
  std::string host_data;  // base64
  uint32_t cbitpos = 51;
  uint32_t reduced_phys_bits = 1;
};

// Where a VM's memory, vCPUs and GPUs sit on a NUMA host (hugepages, pin_numa), as upstream
// lays them out; read from sysfs by resolve_numa.
struct NumaPlacement {
  struct Node {
    uint32_t host_node = 0;  // the host NUMA node backing this guest node
    uint32_t gpus = 0;       // the VM's GPUs on it
    bool operator==(const Node&) const = default;
  };
  std::vector<Node> nodes;                         // hugepages: guest nodes in host-node order
  std::map<std::string, uint32_t> gpu_host_node;   // GPU slot -> host NUMA node
  std::string pin_cpus;                            // pin_numa: cpulist for `taskset -c`
};

// Reads <sysfs>/bus/pci/devices/0000:<slot>/numa_node for each GPU (-1 or missing = node 0;
// no GPU = one node 0) and, with pin_numa, <sysfs>/devices/system/node/node<N>/cpulist of the
// first GPU's node. "Invalid device string" for a slot that is not hex, ':' and '.'.
DSTACKVMM_EXPORT Result<NumaPlacement> resolve_numa(const std::filesystem::path& sysfs_root, const VmManifest& manifest);

// vCPUs and memory (MB) as QEMU gets them: with hugepages, vCPUs round up to a multiple of
// the guest nodes and memory to whole GiB per node (upstream's rounding); else as asked (>= 1 vCPU).
DSTACKVMM_EXPORT uint32_t effective_vcpus(const VmManifest& manifest, const NumaPlacement& numa);
DSTACKVMM_EXPORT uint64_t effective_memory_mb(const VmManifest& manifest, const NumaPlacement& numa);

// Huge pages for a hugepages VM: each host node of `numa` must have free huge pages for its
// share (read from <sysfs>/devices/system/node/node<N>/hugepages, else the host totals under
// <sysfs>/kernel/mm/hugepages). kFailedPrecondition naming what is missing and how to fix it.
DSTACKVMM_EXPORT Status check_hugepages(const std::filesystem::path& sysfs_root, const VmManifest& manifest,
                                        const NumaPlacement& numa);

// Everything the argv depends on, resolved by the caller.
struct QemuInputs {
  VmManifest manifest;
  Image image;
  std::filesystem::path workdir;
  uint32_t cid = 0;
  Platform platform = Platform::kNone;  // never kAuto here
  Accel accel = Accel::kKvm;            // never kAuto here
  GuestChannel channel;
  std::vector<NetworkSpec> networks;      // resolved (see resolve_networks)
  std::optional<std::string> mrconfigid;  // TDX: base64 of 48 bytes
  std::optional<SevSnpParams> sev_snp;    // required when SEV-SNP with TEE
  NumaPlacement numa;                     // required with hugepages or pin_numa
};

// argv[0] is the program (qemu, or sudo when [cvm] user is set). Errors (kInvalidArgument):
// unsupported rootfs types, SEV-SNP without params, a user-net channel without a user NIC,
// commas in paths that QEMU would split, hugepages without NUMA nodes, pin_numa without a cpulist.
DSTACKVMM_EXPORT Result<std::vector<std::string>> build_qemu_command(const Config& config, const QemuInputs& in);

// Each requested NIC merged over the node default; none requested = one NIC of the default.
DSTACKVMM_EXPORT std::vector<NetworkSpec> resolve_networks(const NetworkingConfig& node,
                                          const std::vector<NetworkSpec>& requested);

// Upstream's MAC: sha256(id or "id:index"), optional prefix bytes, locally administered.
DSTACKVMM_EXPORT std::string mac_address(std::string_view vm_id, std::string_view mac_prefix, size_t index);


}  // namespace dstackvmm
