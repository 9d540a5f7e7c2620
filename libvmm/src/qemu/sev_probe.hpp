// SPDX-License-Identifier: Apache-2.0
// The SEV-SNP parameters only the host's QEMU knows: the C-bit position and how many physical
// address bits the encryption takes, asked over QMP (query-sev-capabilities) at every SNP
// start, as upstream asks (tee-launch.md §8.5).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct SevCapabilities {
  uint32_t cbitpos = 0;
  uint32_t reduced_phys_bits = 0;
};

// Upstream's reading of the QMP transcript: non-JSON lines skipped; the first `return` with
// integer cbitpos and reduced-phys-bits wins; else the last `error` seen, else "did not return".
Result<SevCapabilities> parse_sev_capabilities(std::string_view qmp_output);

// Runs `<qemu> -machine none,accel=kvm -display none -nodefaults -qmp stdio` with the three
// QMP commands on stdin, at most `timeout`. Every failure is kQemu "failed to detect AMD
// SEV-SNP cbitpos/reduced-phys-bits from QEMU <path>: <why>".
Result<SevCapabilities> probe_sev_capabilities(const std::string& qemu,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace dstackvmm::internal
