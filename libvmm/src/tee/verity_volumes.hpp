// SPDX-License-Identifier: Apache-2.0
// Verity volumes: read-only disks a compose names (verity_volumes) by a bare file name under
// [cvm] volumes_dir; the guest mounts them by their measured dm-verity root. Resolved once, at
// create (tee-launch.md §11): the manifest keeps the canonical paths, and each volume, which
// changes the guest's ACPI layout, is counted in vm_config.
#pragma once

#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

#include "tee/compose_facts.hpp"

namespace dstackvmm::internal {

// The files to attach, in compose order, a root seen before attached once (the first wins,
// the others not checked, as upstream). kInvalidArgument, upstream's words: "volumes requested
// but cvm.volumes_dir is not configured", "invalid volume source '<s>': must be a bare file
// name", "volume '<s>' escapes volumes_dir" (a symlink out included), "volume '<s>' resolves
// to a path with ',' or '='" (QEMU would split it); kNotFound for a file that is not there.
Result<std::vector<std::string>> resolve_verity_volumes(const std::vector<VerityVolumeRequest>& requested,
                                                        const std::string& volumes_dir);

}  // namespace dstackvmm::internal
