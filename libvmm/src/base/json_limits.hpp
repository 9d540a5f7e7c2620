// SPDX-License-Identifier: Apache-2.0
// Every JSON text that crosses a trust boundary is parsed here, with its size and nesting
// checked before the parser (and everything that walks the result, dump() included, which
// recurses) ever sees it: 100k nested brackets would otherwise overflow the stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dstackvmm::internal {

struct JsonLimits {
  size_t max_bytes = 16 * 1024 * 1024;
  size_t max_depth = 64;  // the deepest message of the wire is 5 levels
  // Values in all (array elements and object members, counted by their separators): what a
  // parse allocates grows with it (~100 bytes a value), not with the text's size.
  size_t max_values = SIZE_MAX;
};

// What a request body may hold: the wire's largest request (a VM's configuration) has a few
// hundred values; 500k port mappings in 9 MB of JSON took 110 MB to parse.
inline constexpr JsonLimits kRequestJsonLimits{10 * 1024 * 1024, 64, 65536};

// Nesting depth of `text`, counting brackets outside strings; stops counting once `limit`
// is passed. Linear, no recursion, no allocation.
size_t json_depth(std::string_view text, size_t limit);

// Parses `text`, or returns a discarded value (is_discarded()) when it is not JSON or breaks
// a limit; `why` then says which, in words fit for an error message.
nlohmann::json parse_json(std::string_view text, const JsonLimits& limits = {}, std::string* why = nullptr);

}  // namespace dstackvmm::internal
