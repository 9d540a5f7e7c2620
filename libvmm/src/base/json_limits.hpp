// SPDX-License-Identifier: Apache-2.0
// Every JSON text that crosses a trust boundary is parsed here, with its size and nesting
// checked before the parser (and everything that walks the result, dump() included, which
// recurses) ever sees it: 100k nested brackets would otherwise overflow the stack.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dstackvmm::internal {

struct JsonLimits {
  size_t max_bytes = 16 * 1024 * 1024;
  size_t max_depth = 64;  // the deepest message of the wire is 5 levels
};

// Nesting depth of `text`, counting brackets outside strings; stops counting once `limit`
// is passed. Linear, no recursion, no allocation.
size_t json_depth(std::string_view text, size_t limit);

// Parses `text`, or returns a discarded value (is_discarded()) when it is not JSON or breaks
// a limit; `why` then says which, in words fit for an error message.
nlohmann::json parse_json(std::string_view text, const JsonLimits& limits = {}, std::string* why = nullptr);

}  // namespace dstackvmm::internal
