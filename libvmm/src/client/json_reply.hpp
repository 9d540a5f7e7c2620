// SPDX-License-Identifier: Apache-2.0
// The client's replies as nlohmann::json, for the library's own users of VmmClient (vmmctl,
// provisioning, tests): the public API hands out JSON text, and this reads it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <dstackvmm/error.hpp>

namespace dstackvmm::client {

using Json = nlohmann::json;

// A reply's text as JSON (it was checked and bounded when it arrived).
Result<Json> parse_reply(const Result<std::string>& text);

// Reading a reply leniently: a field that is missing or of another type than expected (an
// older or stranger daemon) reads as the fallback, never as an exception.
inline std::string field_string(const Json& j, const char* key, const std::string& fallback = "") {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}
inline uint64_t field_uint(const Json& j, const char* key, uint64_t fallback = 0) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : fallback;
}
inline bool field_bool(const Json& j, const char* key, bool fallback = false) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}
inline const Json& field_array(const Json& j, const char* key) {
  static const Json empty = Json::array();
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_array() ? *it : empty;
}
inline const Json& field_object(const Json& j, const char* key) {
  static const Json empty = Json::object();
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_object() ? *it : empty;
}

}  // namespace dstackvmm::client
