// SPDX-License-Identifier: Apache-2.0
// Small string helpers shared by the library's parsers and messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dstackvmm {

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is close enough to be a plausible typo.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& parts, std::string_view sep);

bool starts_with(std::string_view s, std::string_view prefix);

// Non-empty and only 0-9.
bool all_digits(std::string_view s);

// Lowercase hex of bytes.
std::string to_hex(std::string_view bytes);
// Hex (either case, an optional 0x prefix) to bytes; nullopt for odd length or a non-hex digit.
std::optional<std::string> from_hex(std::string_view hex);

// "1h 2m 3s", "2days 4h 5s", "0s": whole seconds in humantime's style (as upstream shows uptimes).
std::string format_duration(uint64_t seconds);

}  // namespace dstackvmm
