// SPDX-License-Identifier: Apache-2.0
// vmmctl apply: read the desired VMs, diff them against the daemon, run the difference.
#include <dstackvmm/client/provision.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include <dstackvmm/client/deploy_spec.hpp>

#include "base/crypto.hpp"
#include "base/fs_util.hpp"
#include "base/json_limits.hpp"
#include "base/text_util.hpp"
#include "client/json_reply.hpp"
#include "config/toml_limits.hpp"
#include "wire/json_codec.hpp"

namespace dstackvmm::client {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxFile = 1u << 20;
constexpr size_t kMaxVms = 1000;

Error invalid(const std::string& where, const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, where + ": " + what);
}

// A file's [[vm]] list as JSON, whichever syntax it was written in.
Result<Json> read_document(const fs::path& file) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "cannot read " + file.string() + ": " + ec.message());
  if (size > kMaxFile) return invalid(file.string(), "larger than 1 MiB");
  auto text = internal::read_file(file);
  if (!text.ok()) return text.error();
  if (file.extension() == ".json") {
    std::string why;
    Json j = internal::parse_json(*text, {kMaxFile, 16}, &why);
    if (j.is_discarded()) return invalid(file.string(), "not JSON: " + why);
    return j;
  }
  if (internal::json_depth(*text, 17) > 16) return invalid(file.string(), "nested deeper than 16 levels");
  if (auto bad = internal::check_toml_limits(*text); !bad.ok())
    return invalid(file.string() + ":" + std::to_string(bad.line) + ":" + std::to_string(bad.column), bad.message);
  toml::table parsed;
  try {
    parsed = toml::parse(*text, file.string());
  } catch (const toml::parse_error& e) {
    return invalid(file.string() + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column),
                   std::string(e.description()));
  }
  std::ostringstream out;
  out << toml::json_formatter(parsed);
  return internal::parse_json(out.str(), {kMaxFile * 4, 32});
}

// Reads one [[vm]] table; every key it does not know is an error naming the closest one.
class VmReader {
 public:
  VmReader(const Json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status unknown_keys() const {
    static const std::vector<std::string> known = {"name",    "image", "vcpu",     "memory",       "disk",        "compose",
                                                   "ports",   "gpus",  "env_file", "kms_urls",     "gateway_urls", "stopped"};
    for (const auto& [key, _] : j_.items())
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string near = closest_match(key, known);
        return invalid(where_, "unknown key `" + key + "`" + (near.empty() ? "" : " (did you mean `" + near + "`?)"));
      }
    return {};
  }
  Result<std::string> text(const char* key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) return invalid(where_, std::string("`") + key + "` is required");
      return std::string();
    }
    if (!it->is_string()) return invalid(where_, std::string("`") + key + "` must be a string");
    return it->get<std::string>();
  }
  Result<std::vector<std::string>> list(const char* key) const {
    std::vector<std::string> out;
    auto it = j_.find(key);
    if (it == j_.end()) return out;
    if (!it->is_array()) return invalid(where_, std::string("`") + key + "` must be a list of strings");
    for (const auto& v : *it) {
      if (!v.is_string()) return invalid(where_, std::string("`") + key + "` must be a list of strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  // A size: a number in the unit given, or a string as deploy takes it.
  Status size(const char* key, uint32_t& out, Result<uint32_t> (*parse)(std::string_view)) const {
    auto it = j_.find(key);
    if (it == j_.end()) return {};
    std::string text = it->is_number_unsigned() ? std::to_string(it->get<uint64_t>()) : it->is_string() ? it->get<std::string>() : "";
    if (text.empty()) return invalid(where_, std::string("`") + key + "` must be a size like 2G or a number");
    auto v = parse(text);
    if (!v.ok()) return v.error().context(where_);
    out = *v;
    return {};
  }
  const Json& json() const { return j_; }
  const std::string& where() const { return where_; }

 private:
  const Json& j_;
  std::string where_;
};

Result<DesiredVm> read_vm(const VmReader& r, const fs::path& base) {
  if (auto s = r.unknown_keys(); !s.ok()) return s.error();
  DesiredVm vm;
  auto name = r.text("name", true);
  auto image = r.text("image", true);
  auto compose = r.text("compose", true);
  auto env_file = r.text("env_file", false);
  for (const auto* res : {&name, &image, &compose, &env_file})
    if (!res->ok()) return res->error();
  vm.name = *name;
  vm.image = *image;
  if (vm.name.empty()) return invalid(r.where(), "`name` must not be empty: VMs are matched by name");
  auto read_beside = [&](const std::string& rel, const char* key) -> Result<std::string> {
    fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : base / rel;
    std::error_code ec;
    if (fs::file_size(p, ec) > kMaxFile || ec)
      return invalid(r.where(), std::string("`") + key + "`: cannot read " + p.string() + (ec ? ": " + ec.message() : ": larger than 1 MiB"));
    return internal::read_file(p);
  };
  auto compose_text = read_beside(*compose, "compose");
  if (!compose_text.ok()) return compose_text.error();
  vm.compose_file = *compose_text;
  if (!env_file->empty()) {
    auto env_text = read_beside(*env_file, "env_file");
    if (!env_text.ok()) return env_text.error();
    auto env = parse_env_file(*env_text);
    if (!env.ok()) return env.error().context(r.where());
    vm.env = *env;
  }
  if (auto it = r.json().find("vcpu"); it != r.json().end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 1024)
      return invalid(r.where(), "`vcpu` must be a number from 1 to 1024");
    vm.vcpu = it->get<uint32_t>();
  }
  if (auto s = r.size("memory", vm.memory_mb, parse_memory_mb); !s.ok()) return s.error();
  if (auto s = r.size("disk", vm.disk_gb, parse_disk_gb); !s.ok()) return s.error();
  auto ports = r.list("ports");
  auto gpus = r.list("gpus");
  auto kms = r.list("kms_urls");
  auto gateways = r.list("gateway_urls");
  for (const auto* res : {&ports, &gpus, &kms, &gateways})
    if (!res->ok()) return res->error();
  for (const auto& spec : *ports) {
    auto p = parse_port_spec(spec);
    if (!p.ok()) return p.error().context(r.where());
    vm.ports.push_back(*p);
  }
  vm.gpus = *gpus;
  vm.kms_urls = *kms;
  vm.gateway_urls = *gateways;
  if (auto it = r.json().find("stopped"); it != r.json().end()) {
    if (!it->is_boolean()) return invalid(r.where(), "`stopped` must be true or false");
    vm.stopped = it->get<bool>();
  }
  return vm;
}

// Comparable text forms of what the daemon reports and what the file asks for.
std::string ports_text(const std::vector<PortMapping>& ports) {
  std::vector<std::string> specs;
  for (const auto& p : ports) specs.push_back(format_port_spec(p));
  std::sort(specs.begin(), specs.end());
  return specs.empty() ? "none" : join(specs, ",");
}
std::string slots_text(std::vector<std::string> slots) {
  std::sort(slots.begin(), slots.end());
  return slots.empty() ? "none" : join(slots, ",");
}
std::string desired_gpus(const DesiredVm& vm) {
  if (auto g = gpu_request(vm.gpus); g && g->attach_mode == "all") return "all";
  return slots_text(vm.gpus);
}
std::string actual_gpus(const VmConfiguration& c) {
  if (!c.gpus) return "none";
  return c.gpus->attach_mode == "all" ? "all" : slots_text(c.gpus->slots);
}
std::string list_text(const std::vector<std::string>& v) { return v.empty() ? "none" : join(v, ","); }
std::string short_hash(const std::string& text) { return "sha256:" + internal::sha256_hex(text).substr(0, 12); }

// What apply compares and changes, one entry a field: its name in the plan, its text from the
// daemon's configuration and from the file, and how an update carries the file's value. The
// diff (make_plan) and the update both walk this table, in this order.
struct Compared {
  const char* field;
  std::string (*actual)(const VmConfiguration&);
  std::string (*desired)(const DesiredVm&);
  void (*carry)(const DesiredVm&, VmUpdate&);
};
const Compared kCompared[] = {
    {"image", [](const VmConfiguration& c) { return c.image; }, [](const DesiredVm& d) { return d.image; },
     [](const DesiredVm& d, VmUpdate& u) { u.image = d.image; }},
    {"vcpu", [](const VmConfiguration& c) { return std::to_string(c.vcpu); }, [](const DesiredVm& d) { return std::to_string(d.vcpu); },
     [](const DesiredVm& d, VmUpdate& u) { u.vcpu = d.vcpu; }},
    {"memory", [](const VmConfiguration& c) { return std::to_string(c.memory) + "M"; },
     [](const DesiredVm& d) { return std::to_string(d.memory_mb) + "M"; }, [](const DesiredVm& d, VmUpdate& u) { u.memory = d.memory_mb; }},
    {"disk", [](const VmConfiguration& c) { return std::to_string(c.disk_size) + "G"; },
     [](const DesiredVm& d) { return std::to_string(d.disk_gb) + "G"; }, [](const DesiredVm& d, VmUpdate& u) { u.disk_size = d.disk_gb; }},
    {"compose", [](const VmConfiguration& c) { return short_hash(c.compose_file); }, [](const DesiredVm& d) { return short_hash(d.compose_file); },
     [](const DesiredVm& d, VmUpdate& u) { u.compose_file = d.compose_file; }},
    {"ports", [](const VmConfiguration& c) { return ports_text(c.ports); }, [](const DesiredVm& d) { return ports_text(d.ports); },
     [](const DesiredVm& d, VmUpdate& u) { u.ports = d.ports; }},
    {"gpus", actual_gpus, desired_gpus,
     [](const DesiredVm& d, VmUpdate& u) { u.gpus = gpu_request(d.gpus).value_or(GpuRequest{"listed", {}}); }},  // none: detach all
    {"kms_urls", [](const VmConfiguration& c) { return list_text(c.kms_urls); }, [](const DesiredVm& d) { return list_text(d.kms_urls); },
     [](const DesiredVm& d, VmUpdate& u) { u.kms_urls = d.kms_urls; }},
    {"gateway_urls", [](const VmConfiguration& c) { return list_text(c.gateway_urls); },
     [](const DesiredVm& d) { return list_text(d.gateway_urls); }, [](const DesiredVm& d, VmUpdate& u) { u.gateway_urls = d.gateway_urls; }},
};

bool is_running(const std::string& status) { return status == "running" || status == "stopping" || status == "unknown"; }

}  // namespace

Result<std::vector<DesiredVm>> load_provision_file(const fs::path& file) {
  auto doc = read_document(file);
  if (!doc.ok()) return doc.error();
  if (!doc->is_object()) return invalid(file.string(), "expected [[vm]] tables (a \"vm\" list in JSON)");
  for (const auto& [key, _] : doc->items())
    if (key != "vm") return invalid(file.string(), "unknown top-level key `" + key + "`; VMs go in [[vm]] tables");
  std::vector<DesiredVm> out;
  if (!doc->contains("vm")) return out;
  const Json& list = (*doc)["vm"];
  if (!list.is_array()) return invalid(file.string(), "`vm` must be a list of tables ([[vm]])");
  if (list.size() > kMaxVms) return invalid(file.string(), "more than 1000 VMs");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = file.filename().string() + ": vm[" + std::to_string(i) + "]";
    if (!list[i].is_object()) return invalid(where, "must be a table");
    auto vm = read_vm(VmReader(list[i], where), file.parent_path());
    if (!vm.ok()) return vm.error();
    if (!names.insert(vm->name).second) return invalid(where, "the name '" + vm->name + "' is used twice");
    out.push_back(std::move(*vm));
  }
  return out;
}

std::string_view plan_action_name(PlanStep::Action a) {
  switch (a) {
    case PlanStep::Action::kCreate: return "create";
    case PlanStep::Action::kUpdate: return "update";
    case PlanStep::Action::kStart: return "start";
    case PlanStep::Action::kStop: return "stop";
    case PlanStep::Action::kNone: return "none";
  }
  return "none";
}

Result<std::vector<PlanStep>> make_plan(const std::vector<DesiredVm>& desired, std::string_view status_json) {
  auto status = parse_reply(std::string(status_json));
  if (!status.ok()) return status.error().context("the daemon's Status");
  const Json& vms = field_array(*status, "vms");
  std::map<std::string, const Json*> by_name;
  if (vms.is_array())
    for (const auto& vm : vms) {
      std::string name = field_string(vm, "name");
      if (field_string(vm, "status") == "removing") continue;
      if (!by_name.emplace(name, &vm).second && std::any_of(desired.begin(), desired.end(), [&](const auto& d) { return d.name == name; }))
        return make_error(ErrorCode::kFailedPrecondition,
                          "two VMs on the daemon are named '" + name + "'; apply matches VMs by name: rename or remove one");
    }
  std::vector<PlanStep> plan;
  for (const auto& d : desired) {
    PlanStep step;
    step.name = d.name;
    auto found = by_name.find(d.name);
    if (found == by_name.end()) {
      step.action = PlanStep::Action::kCreate;
      plan.push_back(std::move(step));
      continue;
    }
    const Json& vm = *found->second;
    step.id = field_string(vm, "id");
    const Json& conf = vm.contains("configuration") && vm["configuration"].is_object() ? vm["configuration"] : Json::object();
    VmConfiguration actual;
    try {
      actual = wire::decode_vm_configuration(conf);
    } catch (const wire::DecodeError& e) {
      return make_error(ErrorCode::kFailedPrecondition, "VM '" + d.name + "': the daemon's configuration does not read: " + e.what());
    }
    if (d.disk_gb < actual.disk_size)
      return make_error(ErrorCode::kFailedPrecondition, "VM '" + d.name + "': the disk cannot shrink from " +
                                                            std::to_string(actual.disk_size) + "G to " + std::to_string(d.disk_gb) + "G");
    for (const auto& f : kCompared)
      if (std::string from = f.actual(actual), to = f.desired(d); from != to) step.changes.push_back({f.field, from, to});
    bool running = is_running(field_string(vm, "status"));
    if (!step.changes.empty()) {
      step.action = PlanStep::Action::kUpdate;
      step.stop_first = running;
      step.start_after = !d.stopped;
    } else if (running && d.stopped) {
      step.action = PlanStep::Action::kStop;
    } else if (!running && !d.stopped) {
      step.action = PlanStep::Action::kStart;
    }
    plan.push_back(std::move(step));
  }
  return plan;
}

std::string plan_to_json(const std::vector<PlanStep>& plan) {
  Json out = Json::array();
  for (const auto& s : plan) {
    Json changes = Json::array();
    for (const auto& c : s.changes) changes.push_back({{"field", c.field}, {"from", c.from}, {"to", c.to}});
    out.push_back({{"action", plan_action_name(s.action)},
                   {"name", s.name},
                   {"id", s.id},
                   {"changes", changes},
                   {"stop_first", s.stop_first},
                   {"start_after", s.start_after}});
  }
  return out.dump();
}

std::string plan_to_text(const std::vector<PlanStep>& plan) {
  std::string out;
  for (const auto& s : plan) {
    switch (s.action) {
      case PlanStep::Action::kCreate: out += "+ create " + s.name + "\n"; break;
      case PlanStep::Action::kStart: out += "> start  " + s.name + " (" + s.id + ")\n"; break;
      case PlanStep::Action::kStop: out += "< stop   " + s.name + " (" + s.id + ")\n"; break;
      case PlanStep::Action::kNone: out += "= " + s.name + " unchanged\n"; break;
      case PlanStep::Action::kUpdate: {
        out += "~ update " + s.name + " (" + s.id + ")";
        if (s.stop_first && s.start_after) out += ", restarting it";
        else if (s.stop_first) out += ", stopping it";
        else if (s.start_after) out += ", then starting it";
        out += "\n";
        for (const auto& c : s.changes) out += "    " + c.field + ": " + c.from + " -> " + c.to + "\n";
        break;
      }
    }
  }
  return out;
}

namespace {

Status stop_and_wait(const VmmClient& client, const PlanStep& step, const ApplyOptions& o) {
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  say("stopping " + step.name);
  if (client.shutdown_vm(step.id).ok() && client.wait_status(step.id, "stopped", o.stop_timeout).ok()) return {};
  say(step.name + " did not power off within " + std::to_string(o.stop_timeout.count() / 1000) + " s; stopping it hard");
  if (auto s = client.stop_vm(step.id); !s.ok()) return s;
  return client.wait_status(step.id, "stopped", std::chrono::seconds(30));
}

Status create(const VmmClient& client, const DesiredVm& d, const ApplyOptions& o) {
  VmConfiguration c;
  c.name = d.name;
  c.image = d.image;
  c.compose_file = d.compose_file;
  c.vcpu = d.vcpu;
  c.memory = d.memory_mb;
  c.disk_size = d.disk_gb;
  c.ports = d.ports;
  c.kms_urls = d.kms_urls;
  c.gateway_urls = d.gateway_urls;
  c.stopped = d.stopped;
  c.gpus = gpu_request(d.gpus);
  if (d.env) {
    if (!o.encrypt_env) return make_error(ErrorCode::kInvalidArgument, "VM '" + d.name + "' has an env_file, and nothing can encrypt it here");
    auto sealed = o.encrypt_env(d, internal::sha256_hex(d.compose_file).substr(0, 40));
    if (!sealed.ok()) return sealed.error();
    c.encrypted_env = *sealed;
  }
  if (o.progress) o.progress("creating " + d.name);
  auto id = client.create_vm(c);
  return id.ok() ? Status() : Status(id.error());
}

Status update(const VmmClient& client, const DesiredVm& d, const PlanStep& step, const ApplyOptions& o) {
  if (step.stop_first)
    if (auto s = stop_and_wait(client, step, o); !s.ok()) return s;
  VmUpdate u;
  u.id = step.id;
  for (const auto& c : step.changes)
    for (const auto& f : kCompared)
      if (c.field == f.field) f.carry(d, u);
  if (o.progress) o.progress("updating " + d.name);
  if (auto r = client.update_vm(u); !r.ok()) return r.error();
  if (!step.start_after) return {};
  if (o.progress) o.progress("starting " + d.name);
  return client.start_vm(step.id);
}

}  // namespace

Status apply_plan(const VmmClient& client, const std::vector<DesiredVm>& desired, const std::vector<PlanStep>& plan,
                  const ApplyOptions& o) {
  for (const auto& step : plan) {
    auto d = std::find_if(desired.begin(), desired.end(), [&](const auto& v) { return v.name == step.name; });
    if (d == desired.end()) return make_error(ErrorCode::kInternal, "the plan names '" + step.name + "', which the file does not");
    Status s;
    switch (step.action) {
      case PlanStep::Action::kCreate: s = create(client, *d, o); break;
      case PlanStep::Action::kUpdate: s = update(client, *d, step, o); break;
      case PlanStep::Action::kStart:
        if (o.progress) o.progress("starting " + d->name);
        s = client.start_vm(step.id);
        break;
      case PlanStep::Action::kStop: s = stop_and_wait(client, step, o); break;
      case PlanStep::Action::kNone: break;
    }
    if (!s.ok()) return s.error().context(std::string(plan_action_name(step.action)) + " " + step.name);
  }
  return {};
}

}  // namespace dstackvmm::client
