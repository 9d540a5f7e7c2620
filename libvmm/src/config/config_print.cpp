// SPDX-License-Identifier: Apache-2.0
// Config -> TOML text, by the key list (config_keys.hpp). Built with toml++ so quoting and
// escaping are never ours to get wrong; its tables keep keys sorted.
#include <sstream>

#include <toml++/toml.h>

#include <dstackvmm/config.hpp>

#include "config/config_keys.hpp"

namespace dstackvmm {
namespace {

int64_t i64(uint64_t v) { return static_cast<int64_t>(v); }

toml::array array_of(const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  return a;
}
toml::array array_of(const std::vector<uint32_t>& v) {
  toml::array a;
  for (uint32_t n : v) a.push_back(i64(n));
  return a;
}

class KeyPrinter {
 public:
  template <class S>
  static toml::table print(const S& section) {
    KeyPrinter p;
    config_keys::describe(p, section);
    return std::move(p.out_);
  }

  void key(std::string_view name, bool v) { out_.insert_or_assign(name, v); }
  void key(std::string_view name, uint32_t v) { out_.insert_or_assign(name, i64(v)); }
  void key(std::string_view name, uint64_t v) { out_.insert_or_assign(name, i64(v)); }
  void key(std::string_view name, const std::string& v) { out_.insert_or_assign(name, v); }
  void key(std::string_view name, const std::vector<std::string>& v) { out_.insert_or_assign(name, array_of(v)); }
  void key(std::string_view name, const std::vector<uint32_t>& v) { out_.insert_or_assign(name, array_of(v)); }
  void key(std::string_view name, const std::map<std::string, std::string>& v) {
    toml::table t;
    for (const auto& [k, s] : v) t.insert_or_assign(k, s);
    out_.insert_or_assign(name, std::move(t));
  }
  template <class T>
  void key(std::string_view name, const std::optional<T>& v) {  // left out when unset
    if (v) key(name, *v);
  }
  void size(std::string_view name, uint64_t v) { out_.insert_or_assign(name, i64(v)); }
  template <class E, size_t N>
  void choice(std::string_view name, E v, std::optional<E> (*)(std::string_view), const std::array<E, N>&) {
    out_.insert_or_assign(name, std::string(to_string(v)));
  }
  template <class S>
  void table(std::string_view name, const S& s) { out_.insert_or_assign(name, print(s)); }
  template <class S>
  void optional_table(std::string_view name, const std::optional<S>& s) {
    if (s) table(name, *s);
  }
  template <class S>
  void tables(std::string_view name, const std::vector<S>& list, const char*) {
    toml::array a;
    for (const auto& s : list) a.push_back(print(s));
    out_.insert_or_assign(name, std::move(a));
  }
  template <class T>
  void old_name(std::string_view, std::string_view, const T&) {}  // read, never written
  void ignored(std::string_view) {}

 private:
  toml::table out_;
};

}  // namespace

std::string print_config(const Config& c) {
  std::ostringstream out;
  out << KeyPrinter::print(c) << '\n';
  return out.str();
}

}  // namespace dstackvmm
