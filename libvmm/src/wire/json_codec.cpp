// SPDX-License-Identifier: Apache-2.0
// prpc JSON <-> library types, from the records' field tables (model/vm_fields.hpp).
#include "wire/json_codec.hpp"

#include <cctype>

#include "base/text_util.hpp"
#include "model/json_writer.hpp"
#include "model/vm_fields.hpp"

namespace dstackvmm::wire {

namespace {

[[noreturn]] void bad(const char* key, const std::string& why) {
  throw DecodeError(std::string("field `") + key + "`: " + why);
}

const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// GET parameters arrive as strings; numbers and booleans inside them are accepted.
bool as_u32(const json& v, uint32_t& out) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= 0xffffffffull) {
    out = static_cast<uint32_t>(v.get<uint64_t>());
    return true;
  }
  if (v.is_string()) {
    std::string s = v;
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    uint64_t n = std::stoull(s);
    if (n > 0xffffffffull) return false;
    out = static_cast<uint32_t>(n);
    return true;
  }
  return false;
}

bool as_bool(const json& v, bool& out) {
  if (v.is_boolean()) {
    out = v;
    return true;
  }
  if (v.is_string() && (v == "true" || v == "false")) {
    out = v == "true";
    return true;
  }
  return false;
}

}  // namespace

std::string get_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return "";
  if (v->is_string()) return *v;
  if (v->is_number()) return v->dump();  // a GET id like "123"
  bad(key, "expected a string, got " + std::string(v->type_name()));
}

std::optional<std::string> get_opt_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_string(j, key);
}

uint32_t get_u32(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return 0;
  uint32_t out = 0;
  if (!as_u32(*v, out)) bad(key, "expected a u32, got " + v->dump());
  return out;
}

std::optional<uint32_t> get_opt_u32(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_u32(j, key);
}

bool get_bool(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return false;
  bool out = false;
  if (!as_bool(*v, out)) bad(key, "expected a boolean, got " + v->dump());
  return out;
}

std::optional<bool> get_opt_bool(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || v->is_null()) return std::nullopt;
  return get_bool(j, key);
}

std::vector<std::string> get_strings(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return {};
  if (!v->is_array()) bad(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) bad(key, "expected an array of strings");
    out.push_back(e);
  }
  return out;
}

std::string get_bytes(const json& j, const char* key) {
  std::string hex = get_string(j, key);
  auto out = from_hex(hex);
  if (!out) bad(key, hex.size() % 2 ? "odd number of hex digits" : "invalid hex string");
  return *out;
}

std::string hex_encode(std::string_view bytes) { return to_hex(bytes); }

namespace {

// Reads the prpc JSON as upstream's serde does: a missing field is the type's zero (not the
// record's default), null only where the field is optional, and each error names the field.
class WireReader {
 public:
  explicit WireReader(const json& j) : j_(j) {}

  void field(const char* name, std::string& v) { v = get_string(j_, name); }
  void field(const char* name, uint32_t& v) { v = get_u32(j_, name); }
  void field(const char* name, bool& v) { v = get_bool(j_, name); }
  void field(const char* name, uint64_t& v) {
    const json* f = find(name);
    if (!f) return void(v = 0);
    if (!f->is_number_unsigned()) bad(name, "expected a u64, got " + f->dump());
    v = f->get<uint64_t>();
  }
  void field(const char* name, std::vector<std::string>& v) { v = get_strings(j_, name); }
  template <class T>
  void required(const char* name, T& v) { field(name, v); }
  void hex(const char* name, std::string& v) { v = get_bytes(j_, name); }
  void optional(const char* name, std::optional<std::string>& v, fields::Absent) { v = get_opt_string(j_, name); }
  void optional(const char* name, std::optional<uint32_t>& v, fields::Absent) { v = get_opt_u32(j_, name); }
  void optional(const char* name, std::optional<bool>& v, fields::Absent) { v = get_opt_bool(j_, name); }
  void optional(const char* name, std::optional<GpuRequest>& v, fields::Absent) {
    const json* f = find(name);
    if (!f || f->is_null()) return void(v = std::nullopt);
    if (!f->is_object()) bad(name, "expected a GpuConfig object");
    v = read<GpuRequest>(*f);
  }
  template <class R>
  void records(const char* name, std::vector<R>& list, fields::Absent) { list = read_list<R>(name); }
  void wrapped(const char* name, const char* key, std::vector<std::string>& list) {
    list.clear();
    if (const json* f = find(name); f && f->is_array())
      for (const auto& e : *f) list.push_back(get_string(e, key));
  }
  template <class R>
  void first_of(const char* name, std::vector<R>& list, fields::Absent) {
    if (list.empty()) list = read_list<R>(name);
  }
  template <class T>
  void flagged(const char* name, const char* flag, std::optional<T>& v) {
    if (!get_bool(j_, flag)) return;
    if constexpr (std::is_same_v<T, std::vector<std::string>>) v = get_strings(j_, name);
    else v = read_list<typename T::value_type>(name);
  }
  // A status this library does not know (a newer daemon's) reads as unknown, not as an error.
  void status(const char* name, VmStatus& s) { s = vm_status_from_name(get_string(j_, name)).value_or(VmStatus::kUnknown); }
  template <class R>
  void brief(const char* name, R& record) {  // null in a brief listing: left as it is
    if (const json* f = find(name); f && f->is_object()) record = read<R>(*f);
  }
  void nonempty(const char* name, std::optional<std::string>& v, bool as_hex) {
    std::string s = as_hex ? get_bytes(j_, name) : get_string(j_, name);
    if (!s.empty()) v = std::move(s);
  }

 private:
  const json* find(const char* name) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(name);
    return it == j_.end() ? nullptr : &*it;
  }
  template <class R>
  static R read(const json& j) {
    R r;
    WireReader nested(j);
    fields::describe(fields::Wire{}, nested, r);
    return r;
  }
  template <class R>
  std::vector<R> read_list(const char* name) const {
    std::vector<R> out;
    const json* f = find(name);
    if constexpr (std::is_same_v<R, NetworkSpec>) {
      // upstream's NetworkingConfig: a list, or (older clients) one object
      if (!f || f->is_null()) return out;
      if (f->is_object()) return {read<R>(*f)};
      if (!f->is_array()) bad(name, "expected NetworkingConfig");
    } else {
      if (!f) return out;
      if (!f->is_array()) bad(name, "expected an array");
    }
    for (const auto& e : *f) out.push_back(read<R>(e));
    return out;
  }

  const json& j_;
};

using Writer = fields::JsonWriter<fields::Wire>;

}  // namespace

std::vector<PortMapping> decode_ports(const json& j) {
  std::vector<PortMapping> out;
  WireReader(j).records("ports", out, fields::Absent::kNull);
  return out;
}

std::optional<GpuRequest> decode_gpus(const json& j) {
  std::optional<GpuRequest> out;
  WireReader(j).optional("gpus", out, fields::Absent::kNull);
  return out;
}

VmConfiguration decode_vm_configuration(const json& j) {
  VmConfiguration c;
  WireReader reader(j);
  fields::describe(fields::Wire{}, reader, c);
  return c;
}

json encode_vm_configuration(const VmConfiguration& c) { return Writer::write(c); }

VmUpdate decode_vm_update(const json& j) {
  VmUpdate u;
  WireReader reader(j);
  fields::describe(fields::Wire{}, reader, u);
  return u;
}

json encode_vm_update(const VmUpdate& u) { return Writer::write(u); }

json encode_vm_info(const VmInfo& i, bool brief) { return Writer::write(i, brief); }

VmInfo decode_vm_info(const json& j) {
  VmInfo i;
  WireReader reader(j);
  fields::describe(fields::Wire{}, reader, i);
  return i;
}

namespace {
std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out += ' ';
    else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
             std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

namespace {
std::string valid_utf8(const std::string& s) {
  json j = s;
  return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}
}  // namespace

json query_to_json(std::string_view query) {
  json out = json::object();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    // Percent-decoding can make any bytes; JSON strings must be UTF-8 (dump() would throw
    // on every later Status that shows them), so invalid sequences become U+FFFD.
    key = valid_utf8(key);
    value = valid_utf8(value);
    size_t bracket = key.find('[');
    if (bracket != std::string::npos && key.back() == ']') {  // ids[0]=a -> "ids": ["a"]
      std::string name = key.substr(0, bracket);
      if (!out[name].is_array()) out[name] = json::array();
      out[name].push_back(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

}  // namespace dstackvmm::wire
