// SPDX-License-Identifier: Apache-2.0
// A record as JSON, from its field table (model/vm_fields.hpp), in either form: keys are
// sorted as nlohmann::json keeps them, so the bytes do not depend on the table's order.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/text_util.hpp"
#include "model/vm_fields.hpp"

namespace dstackvmm::fields {

template <class Form>
class JsonWriter {
 public:
  using json = nlohmann::json;

  // `brief`: a brief listing's VmInfo (its configuration sent as null).
  template <class R>
  static json write(const R& record, bool brief = false) {
    JsonWriter w(brief);
    describe(Form{}, w, record);
    return std::move(w.out_);
  }

  template <class T>
  void field(const char* name, const T& v) { out_[name] = v; }
  template <class T>
  void required(const char* name, const T& v) { out_[name] = v; }
  void hex(const char* name, const std::string& bytes) { out_[name] = to_hex(bytes); }
  template <class T>
  void optional(const char* name, const std::optional<T>& v, Absent absent) {
    if (v) out_[name] = value(*v);
    else if (absent == Absent::kNull) out_[name] = nullptr;
  }
  template <class R>
  void records(const char* name, const std::vector<R>& list, Absent absent) {
    if (list.empty() && absent == Absent::kOmit) return;
    out_[name] = value(list);
  }
  void wrapped(const char* name, const char* key, const std::vector<std::string>& list) {
    json a = json::array();
    for (const auto& s : list) a.push_back({{key, s}});
    out_[name] = std::move(a);
  }
  template <class R>
  void first_of(const char* name, const std::vector<R>& list, Absent absent) {
    if (!list.empty()) out_[name] = write(list.front());
    else if (absent == Absent::kNull) out_[name] = nullptr;
  }
  template <class T>
  void flagged(const char* name, const char* flag, const std::optional<T>& v) {
    if (!v) return;
    out_[flag] = true;
    out_[name] = value(*v);
  }
  void nonempty(const char* name, const std::optional<std::string>& v, bool as_hex) {
    if (v) out_[name] = as_hex ? to_hex(*v) : *v;
  }
  void status(const char* name, VmStatus s) { out_[name] = vm_status_name(s); }
  void nonzero(const char* name, uint32_t n) {
    if (n) out_[name] = n;
  }
  template <class R>
  void brief(const char* name, const R& record) { out_[name] = brief_ ? json() : write(record); }

 private:
  explicit JsonWriter(bool brief) : brief_(brief) {}

  template <class T>
  static constexpr bool kRecord = requires(JsonWriter& w, const T& t) { describe(Form{}, w, t); };

  template <class T>
  static json value(const T& v) {
    if constexpr (kRecord<T>) {
      return write(v);
    } else if constexpr (requires { typename T::value_type; } && !std::is_same_v<T, std::string>) {
      if constexpr (kRecord<typename T::value_type>) {
        json a = json::array();
        for (const auto& r : v) a.push_back(write(r));
        return a;
      } else {
        return json(v);
      }
    } else {
      return json(v);
    }
  }

  bool brief_ = false;
  json out_ = json::object();
};

}  // namespace dstackvmm::fields
