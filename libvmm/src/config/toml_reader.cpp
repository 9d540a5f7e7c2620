// SPDX-License-Identifier: Apache-2.0
// Typed, position-aware reading of TOML tables.
#include "config/toml_reader.hpp"

#include <cctype>
#include <limits>
#include <sstream>

#include "base/text_util.hpp"

namespace dstackvmm::internal {

void TomlReport::error(SourcePos at, std::string key, std::string message) {
  diagnostics_.push_back({ConfigDiagnostic::Severity::kError, origin_, at.line, at.column,
                          std::move(key), std::move(message)});
}

void TomlReport::warning(SourcePos at, std::string key, std::string message) {
  diagnostics_.push_back({ConfigDiagnostic::Severity::kWarning, origin_, at.line, at.column,
                          std::move(key), std::move(message)});
}

bool TomlReport::has_errors() const {
  for (const auto& d : diagnostics_)
    if (d.severity == ConfigDiagnostic::Severity::kError) return true;
  return false;
}

std::string describe_node(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string \"" + std::string(*n.value<std::string_view>()) + "\"";
    case toml::node_type::integer:
      return "integer " + std::to_string(*n.value<int64_t>());
    case toml::node_type::floating_point: {
      std::ostringstream s;
      s << *n.value<double>();
      return "float " + s.str();
    }
    case toml::node_type::boolean:
      return std::string("boolean ") + (*n.value<bool>() ? "true" : "false");
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

TableReader::TableReader(TomlReport& report, const toml::table* table, std::string path)
    : report_(&report), table_(table), path_(std::move(path)) {}

std::string TableReader::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

SourcePos TableReader::pos_of(const toml::node& n) const {
  const auto& s = n.source();
  return {static_cast<uint32_t>(s.begin.line), static_cast<uint32_t>(s.begin.column)};
}

const toml::node* TableReader::lookup(std::string_view key) {
  known_.emplace_back(key);
  if (!table_) return nullptr;
  const toml::node* n = table_->get(key);
  if (n) report_->positions()[key_path(key)] = pos_of(*n);
  return n;
}

const toml::node* TableReader::node(std::string_view key) { return lookup(key); }

void TableReader::type_error(std::string_view key, const toml::node& n,
                             std::string_view expected) {
  report_->error(pos_of(n), key_path(key),
                 "expected " + std::string(expected) + ", got " + describe_node(n));
}

TableReader TableReader::table(std::string_view key) {
  const toml::node* n = lookup(key);
  if (n && !n->is_table()) {
    type_error(key, *n, "a table");
    n = nullptr;
  }
  return TableReader(*report_, n ? n->as_table() : nullptr, key_path(key));
}

void TableReader::get(std::string_view key, bool& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  if (auto v = n->value_exact<bool>()) out = *v;
  else type_error(key, *n, "a boolean");
}

namespace {
template <class UInt>
bool read_unsigned(TableReader& r, std::string_view key, const toml::node& n, UInt& out) {
  auto v = n.value_exact<int64_t>();
  if (!v) return false;
  constexpr auto kMax = std::numeric_limits<UInt>::max();
  if (*v < 0 || static_cast<uint64_t>(*v) > kMax) {
    r.report().error(r.pos_of(n), r.key_path(key),
                     "expected an integer in 0.." + std::to_string(kMax) + ", got " +
                         std::to_string(*v));
    return true;
  }
  out = static_cast<UInt>(*v);
  return true;
}

std::optional<uint64_t> parse_human_size(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  uint64_t mult = 1;
  char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (unit == 'B' && s.size() > 1) {  // "4MB", "4KiB" style tails
    s.remove_suffix(1);
    if (!s.empty() && (s.back() == 'i' || s.back() == 'I')) s.remove_suffix(1);
    unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  }
  if (unit == 'K') mult = 1ull << 10;
  else if (unit == 'M') mult = 1ull << 20;
  else if (unit == 'G') mult = 1ull << 30;
  else if (unit == 'T') mult = 1ull << 40;
  if (mult != 1) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (value > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > std::numeric_limits<uint64_t>::max() / mult) return std::nullopt;
  return value * mult;
}
}  // namespace

void TableReader::get(std::string_view key, uint32_t& out) {
  const toml::node* n = lookup(key);
  if (n && !read_unsigned(*this, key, *n, out)) type_error(key, *n, "an integer");
}

void TableReader::get(std::string_view key, uint64_t& out) {
  const toml::node* n = lookup(key);
  if (n && !read_unsigned(*this, key, *n, out)) type_error(key, *n, "an integer");
}

void TableReader::get(std::string_view key, std::optional<uint32_t>& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  uint32_t v = 0;
  if (!read_unsigned(*this, key, *n, v)) type_error(key, *n, "an integer");
  else out = v;
}

void TableReader::get_size(std::string_view key, uint64_t& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  if (n->is_integer()) {
    read_unsigned(*this, key, *n, out);
  } else if (auto s = n->value_exact<std::string>()) {
    if (auto v = parse_human_size(*s)) out = *v;
    else type_error(key, *n, "a size like 4194304, \"512K\", \"4M\" or \"1G\"");
  } else {
    type_error(key, *n, "a size (integer or string like \"4M\")");
  }
}

void TableReader::get(std::string_view key, std::string& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  if (auto v = n->value_exact<std::string>()) out = *v;
  else type_error(key, *n, "a string");
}

void TableReader::get(std::string_view key, std::optional<std::string>& out) {
  std::string v;
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  get(key, v);
  if (n && n->is_string()) out = v;
}

void TableReader::get(std::string_view key, std::optional<bool>& out) {
  bool v = false;
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  get(key, v);
  if (n && n->is_boolean()) out = v;
}

void TableReader::get(std::string_view key, std::vector<std::string>& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a) return type_error(key, *n, "an array of strings");
  std::vector<std::string> values;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    if (auto v = e.value_exact<std::string>()) values.push_back(*v);
    else type_error(std::string(key) + "[" + std::to_string(i) + "]", e, "a string");
  }
  out = std::move(values);
}

void TableReader::get(std::string_view key, std::vector<uint32_t>& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a) return type_error(key, *n, "an array of integers");
  std::vector<uint32_t> values;
  for (size_t i = 0; i < a->size(); ++i) {
    uint32_t v = 0;
    std::string item = std::string(key) + "[" + std::to_string(i) + "]";
    if (read_unsigned(*this, item, *a->get(i), v)) values.push_back(v);
    else type_error(item, *a->get(i), "an integer");
  }
  out = std::move(values);
}

void TableReader::get(std::string_view key, std::map<std::string, std::string>& out) {
  const toml::node* n = lookup(key);
  if (!n) return;
  const toml::table* t = n->as_table();
  if (!t) return type_error(key, *n, "a table of strings");
  std::map<std::string, std::string> values;
  for (auto&& [k, v] : *t) {
    if (auto s = v.value_exact<std::string>()) values[std::string(k.str())] = *s;
    else type_error(std::string(key) + "." + std::string(k.str()), v, "a string");
  }
  out = std::move(values);
}

void TableReader::finish() {
  if (!table_) return;
  for (auto&& [k, v] : *table_) {
    std::string name(k.str());
    bool known = false;
    for (const auto& kk : known_) known = known || kk == name;
    if (known) continue;
    std::string hint = closest_match(name, known_);
    const auto& s = k.source();
    SourcePos at{static_cast<uint32_t>(s.begin.line), static_cast<uint32_t>(s.begin.column)};
    if (at.line == 0) at = pos_of(v);
    report_->warning(at, key_path(name),
                     hint.empty() ? "unknown key" : "unknown key (did you mean " + hint + "?)");
  }
}

}  // namespace dstackvmm::internal
