// SPDX-License-Identifier: Apache-2.0
// vm-manifest.json in upstream's format, from its field table (model/vm_fields.hpp).
#include <dstackvmm/manifest.hpp>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "model/json_writer.hpp"
#include "model/vm_fields.hpp"

namespace dstackvmm {

using nlohmann::json;

namespace {

// Reads what upstream writes: a missing field keeps the record's default, a field of another
// type is an error naming it (the top-level field, for what is nested in it).
class ManifestReader {
 public:
  ManifestReader(const json& j, const char** field) : j_(j), field_(field) {}

  template <class T>
  void field(const char* name, T& v) {
    note(name);
    v = j_.value(name, v);
  }
  template <class T>
  void required(const char* name, T& v) {
    note(name);
    v = j_.at(name).template get<T>();
  }
  template <class T>
  void optional(const char* name, std::optional<T>& v, fields::Absent) {
    note(name);
    auto it = j_.find(name);
    if (it == j_.end()) return;
    if constexpr (std::is_same_v<T, std::string>) {
      if (it->is_string()) v = it->template get<std::string>();
    } else if (it->is_object()) {
      v = read<T>(*it);
    }
  }
  template <class R>
  void records(const char* name, std::vector<R>& list, fields::Absent) {
    note(name);
    if (auto it = j_.find(name); it != j_.end() && it->is_array())
      for (const auto& e : *it) list.push_back(read<R>(e));
  }
  void wrapped(const char* name, const char* key, std::vector<std::string>& list) {
    note(name);
    if (auto it = j_.find(name); it != j_.end() && it->is_array())
      for (const auto& e : *it) list.push_back(e.at(key).get<std::string>());
  }
  template <class R>
  void first_of(const char* name, std::vector<R>& list, fields::Absent) {
    if (!list.empty()) return;
    if (auto it = j_.find(name); it != j_.end() && it->is_object()) list.push_back(read<R>(*it));
  }

 private:
  void note(const char* name) {
    if (field_) *field_ = name;
  }
  template <class R>
  static R read(const json& j) {
    R r;
    ManifestReader nested(j, nullptr);  // errors keep naming the top-level field
    fields::describe(fields::Manifest{}, nested, r);
    return r;
  }

  const json& j_;
  const char** field_;
};

}  // namespace

std::string manifest_to_json(const VmManifest& m) { return fields::JsonWriter<fields::Manifest>::write(m).dump(); }

Result<VmManifest> manifest_from_json(std::string_view text) {
  json j = internal::parse_json(text);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "vm-manifest.json is not a JSON object");
  VmManifest m;
  const char* field = "";
  try {
    ManifestReader reader(j, &field);
    fields::describe(fields::Manifest{}, reader, m);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("vm-manifest.json: field '") + field + "': " + e.what());
  }
  return m;
}

VmManifest manifest_for(const VmConfiguration& cfg) {
  VmManifest m;
  fields::shared([](const auto& from, auto& to) { to = from; }, cfg, m);
  m.no_tee = cfg.no_tee || cfg.simulated_tee.has_value();  // a simulated TEE runs without one
  return m;
}

VmConfiguration configuration_of(const VmManifest& m, bool started) {
  VmConfiguration c;
  fields::shared([](auto& to, const auto& from) { to = from; }, c, m);
  c.app_id = m.app_id;
  if (m.gpus) c.gpus = GpuRequest{m.gpus->attach_mode, m.gpus->gpus};
  c.stopped = !started;
  return c;
}

}  // namespace dstackvmm
