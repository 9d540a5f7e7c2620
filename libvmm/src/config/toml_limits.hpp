// SPDX-License-Identifier: Apache-2.0
// Bounds on TOML text checked before toml++ parses it: its parser recurses per dotted key
// part and per nested array or inline table, so 100k dotted parts overflow the stack before
// any check of ours could run. One linear pass, no recursion, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dstackvmm::internal {

struct TomlLimits {
  size_t max_bytes = 1 << 20;
  size_t max_depth = 32;        // nested arrays and inline tables
  size_t max_key_parts = 32;    // dotted parts of one key or table header
  size_t max_key_length = 1024; // bare characters of one key
};

struct TomlLimitError {
  uint32_t line = 0, column = 0;  // 1-based; 0 when the text as a whole is too large
  std::string message;            // "" when the text is within the limits
  bool ok() const { return message.empty(); }
};

TomlLimitError check_toml_limits(std::string_view text, const TomlLimits& limits = {});

}  // namespace dstackvmm::internal
