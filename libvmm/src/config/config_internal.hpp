// SPDX-License-Identifier: Apache-2.0
// Private seams between the config parser, validator and printer.
#pragma once

#include <dstackvmm/config.hpp>

#include "config/toml_reader.hpp"

namespace dstackvmm::internal {

// Appends one error per semantic problem, positioned at the key when the parse saw it.
void validate_config(const Config& config, TomlReport& report);

}  // namespace dstackvmm::internal
