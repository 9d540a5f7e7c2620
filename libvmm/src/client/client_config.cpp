// SPDX-License-Identifier: Apache-2.0
#include <dstackvmm/client/client_config.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include <dstackvmm/client/env_crypto.hpp>

#include "base/fs_util.hpp"
#include "base/json_limits.hpp"
#include "base/text_util.hpp"

namespace dstackvmm::client {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxFile = 1u << 20;  // these files are a few hundred bytes

// A missing file is null; anything else must be a JSON object.
Result<json> read_json_object(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return json(nullptr);
  if (fs::file_size(file, ec) > kMaxFile) return make_error(ErrorCode::kInvalidArgument, file.string() + " is larger than 1 MiB");
  auto text = internal::read_file(file);
  if (!text.ok()) return text.error();
  std::string why;
  json j = internal::parse_json(*text, {kMaxFile, 16}, &why);
  if (!j.is_object())
    return make_error(ErrorCode::kInvalidArgument, file.string() + " is not a JSON object" + (why.empty() ? "" : ": " + why) +
                                                       "; fix or remove it");
  return j;
}

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status write_json(const fs::path& file, const json& j) {
  if (auto s = internal::make_dirs(file.parent_path()); !s.ok()) return s;
  return internal::write_file_atomic(file, j.dump(2) + "\n", 0600);  // may hold a token
}

}  // namespace

fs::path default_client_dir() {
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".dstack-vmm";
}

Result<ClientConfigFile> load_client_config(const fs::path& file) {
  auto j = read_json_object(file);
  if (!j.ok()) return j.error();
  ClientConfigFile c;
  if (j->is_null()) return c;
  c.url = text_of(*j, "url");
  c.auth_user = text_of(*j, "auth_user");
  c.auth_password = text_of(*j, "auth_password");
  c.auth_token = text_of(*j, "auth_token");
  c.active_vmm = text_of(*j, "active_vmm");
  c.current_context = text_of(*j, "current_context");
  if (auto it = j->find("contexts"); it != j->end() && it->is_object())
    for (const auto& [name, v] : it->items()) {
      if (!v.is_object() || c.contexts.size() >= 1024) continue;
      c.contexts.push_back({name, text_of(v, "url"), text_of(v, "auth_token"), text_of(v, "auth_user"), text_of(v, "auth_password")});
    }
  return c;
}

Status save_client_config(const fs::path& file, const ClientConfigFile& c) {
  auto j = read_json_object(file);
  if (!j.ok()) return j.error();
  json out = j->is_object() ? *j : json::object();
  auto put = [&](const char* key, const std::string& v) {
    if (v.empty())
      out.erase(key);
    else
      out[key] = v;
  };
  put("url", c.url);
  put("auth_user", c.auth_user);
  put("auth_password", c.auth_password);
  put("auth_token", c.auth_token);
  put("active_vmm", c.active_vmm);
  put("current_context", c.current_context);
  json contexts = json::object();
  for (const auto& ctx : c.contexts) {
    json one{{"url", ctx.url}};
    if (!ctx.auth_token.empty()) one["auth_token"] = ctx.auth_token;
    if (!ctx.auth_user.empty()) one["auth_user"] = ctx.auth_user;
    if (!ctx.auth_password.empty()) one["auth_password"] = ctx.auth_password;
    contexts[ctx.name] = one;
  }
  if (contexts.empty()) out.erase("contexts");
  else out["contexts"] = contexts;
  return write_json(file, out);
}

fs::path default_discovery_dir() { return internal::default_discovery_dir(); }

std::vector<RunningDaemon> list_running_daemons(const fs::path& dir) {
  std::vector<RunningDaemon> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json" || out.size() >= 1024) continue;
    auto j = read_json_object(e.path());
    if (!j.ok() || !j->is_object()) continue;
    RunningDaemon d;
    d.id = text_of(*j, "id");
    d.pid = (*j)["pid"].is_number_integer() ? (*j)["pid"].get<int>() : 0;
    if (d.id.empty() || d.pid <= 0 || (::kill(d.pid, 0) != 0 && errno == ESRCH)) continue;
    d.address = text_of(*j, "address");
    d.working_dir = text_of(*j, "working_dir");
    d.node_name = text_of(*j, "node_name");
    d.version = text_of(*j, "version");
    d.started_at = (*j)["started_at"].is_number_unsigned() ? (*j)["started_at"].get<uint64_t>() : 0;
    if (starts_with(d.address, "unix:")) {
      fs::path p = d.address.substr(5);
      d.url = "unix:" + (p.is_absolute() || d.working_dir.empty() ? p : (fs::path(d.working_dir) / p).lexically_normal()).string();
    } else {
      d.url = "http://" + d.address;
    }
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.started_at < b.started_at; });
  return out;
}

UrlChoice resolve_daemon_url(const std::optional<std::string>& flag, const std::optional<std::string>& env,
                             const ClientConfigFile& config, const std::vector<RunningDaemon>& daemons) {
  if (flag && !flag->empty()) return {*flag, "--url"};
  if (env && !env->empty()) return {*env, "DSTACK_VMM_URL"};
  if (!config.url.empty()) return {config.url, "config"};
  if (!config.active_vmm.empty())
    for (const auto& d : daemons)
      if (starts_with(d.id, config.active_vmm)) return {d.url, "active daemon"};
  if (daemons.size() == 1) return {daemons.front().url, "the only daemon"};
  return {"http://localhost:8080", "default"};
}

Result<std::vector<std::string>> load_trusted_signers(const fs::path& file) {
  auto j = read_json_object(file);
  if (!j.ok()) return j.error();
  std::vector<std::string> keys;
  if (j->is_null()) return keys;
  auto it = j->find("trusted_signers");
  if (it == j->end() || !it->is_array()) return keys;
  for (const auto& k : *it) {
    if (!k.is_string()) continue;
    auto n = normalize_signer_key(k.get<std::string>());
    if (n.ok()) keys.push_back(*n);
  }
  return keys;
}

Status save_trusted_signers(const fs::path& file, const std::vector<std::string>& keys) {
  auto j = read_json_object(file);
  if (!j.ok()) return j.error();
  json out = j->is_object() ? *j : json::object();
  out["trusted_signers"] = keys;
  return write_json(file, out);
}

}  // namespace dstackvmm::client
