// SPDX-License-Identifier: Apache-2.0
#include "base/json_limits.hpp"

namespace dstackvmm::internal {

namespace {
// Depth (stops counting past `limit`) and values (separators and containers) of a JSON text.
std::pair<size_t, size_t> json_shape(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0, values = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++values;
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return {deepest, values};
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',') {
      ++values;
    }
  }
  return {deepest, values};
}
}  // namespace

size_t json_depth(std::string_view text, size_t limit) { return json_shape(text, limit).first; }

nlohmann::json parse_json(std::string_view text, const JsonLimits& limits, std::string* why) {
  auto refuse = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return nlohmann::json(nlohmann::json::value_t::discarded);
  };
  if (text.size() > limits.max_bytes)
    return refuse("JSON of " + std::to_string(text.size()) + " bytes is over the limit of " +
                  std::to_string(limits.max_bytes));
  auto [depth, values] = json_shape(text, limits.max_depth);
  if (depth > limits.max_depth) return refuse("JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
  if (values > limits.max_values)
    return refuse("JSON of more than " + std::to_string(limits.max_values) + " values (a list too long for this request)");
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return refuse("invalid JSON");
  return j;
}

}  // namespace dstackvmm::internal
