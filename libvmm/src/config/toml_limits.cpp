// SPDX-License-Identifier: Apache-2.0
// Bounds on TOML text before it is parsed (toml_limits.hpp).
#include "config/toml_limits.hpp"

namespace dstackvmm::internal {

TomlLimitError check_toml_limits(std::string_view t, const TomlLimits& limits) {
  if (t.size() > limits.max_bytes)
    return {0, 0, "larger than " + std::to_string(limits.max_bytes >> 10) + " KiB"};
  enum class In { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral } in = In::kCode;
  uint32_t line = 1, column = 0;
  size_t depth = 0, parts = 0, bare = 0;  // parts and bare: of the current key-ish run
  auto fail = [&](std::string m) { return TomlLimitError{line, column, std::move(m)}; };
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
    }
    auto starts = [&](std::string_view s) { return t.substr(i, s.size()) == s; };
    switch (in) {
      case In::kComment:
        if (c == '\n') in = In::kCode;
        continue;
      case In::kBasic:
        if (c == '\\') ++i;
        else if (c == '"' || c == '\n') in = In::kCode;
        continue;
      case In::kLiteral:
        if (c == '\'' || c == '\n') in = In::kCode;
        continue;
      case In::kMultiBasic:
        if (c == '\\') ++i;
        else if (starts("\"\"\"")) in = In::kCode, i += 2;
        continue;
      case In::kMultiLiteral:
        if (starts("'''")) in = In::kCode, i += 2;
        continue;
      case In::kCode:
        break;
    }
    if (c == '#') in = In::kComment;
    else if (starts("\"\"\"")) in = In::kMultiBasic, i += 2;
    else if (starts("'''")) in = In::kMultiLiteral, i += 2;
    else if (c == '"') in = In::kBasic;
    else if (c == '\'') in = In::kLiteral;
    if (in != In::kCode) continue;
    if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) return fail("nested deeper than " + std::to_string(limits.max_depth) + " arrays or tables");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
    if (c == '.') {
      if (++parts >= limits.max_key_parts) return fail("a key of more than " + std::to_string(limits.max_key_parts) + " dotted parts");
    } else if (c == '=' || c == ',' || c == '\n' || c == '[' || c == ']' || c == '{' || c == '}') {
      parts = bare = 0;
    } else if (c != ' ' && c != '\t' && c != '\r' && ++bare > limits.max_key_length) {
      return fail("a key or value of more than " + std::to_string(limits.max_key_length) + " bare characters");
    }
  }
  return {};
}

}  // namespace dstackvmm::internal
