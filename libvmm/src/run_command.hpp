// SPDX-License-Identifier: Apache-2.0
// Running a short helper (qemu-img, tar) and reporting its output when it fails.
#pragma once

#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// Runs argv (argv[0] looked up on PATH) to completion; kQemu "<what>: <output>" on failure.
Status run_command(const std::vector<std::string>& argv, const std::string& what);

}  // namespace dstackvmm::internal
