// SPDX-License-Identifier: Apache-2.0
// QEMU's version for vm_config: the verifier computes different measurements for different
// QEMUs, so a guest must be told the one that runs it (tee-launch.md §13).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// Upstream's parse of `qemu --version`: on the first line, the word after "version" when it
// looks like a version (starts with a digit; has a '.' or is digits and '-'), else the first
// such word; cut at the first '+'. "Could not parse QEMU version from output" otherwise.
Result<std::string> parse_qemu_version_output(std::string_view output);

// Runs `<qemu> --version` (at most `timeout`) and parses it. Asked once per binary: the answer
// is kept by path, size and modification time, so a replaced QEMU is asked again.
Result<std::string> detect_qemu_version(const std::string& qemu,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace dstackvmm::internal
