// SPDX-License-Identifier: Apache-2.0
// RFC 8785 (JCS) and serde_json's compact form (canonical_json.hpp).
#include "tee/canonical_json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

namespace dstackvmm::internal {

namespace {

using json = nlohmann::json;

// The next code point of UTF-8 text (invalid bytes read as themselves: keys compared here
// came out of a JSON parser, which rejected them already).
uint32_t next_code_point(const std::string& s, size_t& i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  uint32_t c = byte(i);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + len > s.size()) len = 1;
  if (len > 1) {
    c &= 0x7f >> len;
    for (size_t k = 1; k < len; ++k) c = (c << 6) | (byte(i + k) & 0x3f);
  }
  i += len;
  return c;
}

std::vector<uint16_t> utf16(const std::string& s) {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = next_code_point(s, i);
    if (c >= 0x10000) {
      c -= 0x10000;
      out.push_back(static_cast<uint16_t>(0xd800 | (c >> 10)));
      out.push_back(static_cast<uint16_t>(0xdc00 | (c & 0x3ff)));
    } else {
      out.push_back(static_cast<uint16_t>(c));
    }
  }
  return out;
}

// ECMAScript's Number::toString (RFC 8785 §3.2.2.3) from the shortest round-trip digits.
std::string es_number(double d) {
  if (d == 0 || !std::isfinite(d)) return "0";  // JSON has no NaN or infinity; -0 prints as 0
  if (d < 0) return "-" + es_number(-d);
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int n = std::stoi(sci.substr(e + 1)) + 1;  // position of the decimal point
  int k = static_cast<int>(digits.size());
  if (k <= n && n <= 21) return digits + std::string(static_cast<size_t>(n - k), '0');
  if (0 < n && n <= 21) return digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  if (-6 < n && n <= 0) return "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  int exp = n - 1;
  std::string mantissa = k == 1 ? digits : digits.substr(0, 1) + "." + digits.substr(1);
  return mantissa + "e" + (exp < 0 ? "-" : "+") + std::to_string(std::abs(exp));
}

void write(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::object: {
      std::vector<std::pair<std::vector<uint16_t>, const std::string*>> keys;
      for (const auto& [k, _] : v.items()) keys.emplace_back(utf16(k), &k);
      std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [_, key] : keys) {
        if (!first) out += ',';
        first = false;
        out += json(*key).dump(-1, ' ', false, json::error_handler_t::replace);
        out += ':';
        write(v.at(*key), out);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        write(v[i], out);
      }
      out += ']';
      return;
    }
    case json::value_t::number_float:
      out += es_number(v.get<double>());
      return;
    default:  // strings, integers, booleans, null: nlohmann prints them as RFC 8785 does
      out += v.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

}  // namespace

std::string canonical_json(const json& value) {
  std::string out;
  write(value, out);
  return out;
}

std::string compact_json(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace dstackvmm::internal
