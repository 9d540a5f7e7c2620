// SPDX-License-Identifier: Apache-2.0
#include "cli.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <dstackvmm/client/client_config.hpp>

namespace vmmctl {

namespace dc = dstackvmm::client;

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return kExitUsage;
    case ErrorCode::kNotFound: return kExitNotFound;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kResourceExhausted: return kExitConflict;
    case ErrorCode::kUnavailable: return kExitUnreachable;
    case ErrorCode::kUnauthenticated: return kExitAuth;
    case ErrorCode::kIo:
    case ErrorCode::kQemu:
    case ErrorCode::kInternal: return kExitFailed;
  }
  return kExitFailed;
}

void fail(Error error) { throw Failure{std::move(error)}; }
void fail(ErrorCode code, std::string message) { throw Failure{Error{code, std::move(message)}}; }

dc::ClientConfigFile Cli::config() const { return must(dc::load_client_config(dc::default_client_dir() / "config.json")); }

VmmClient Cli::make_client(std::string url, std::string token, std::string user, std::string password) const {
  dc::ClientOptions o;
  o.url = std::move(url);
  // The command line's credentials win over saved ones.
  o.token = !g_.token.empty() ? g_.token : std::move(token);
  o.auth_user = !g_.auth_user.empty() ? g_.auth_user : std::move(user);
  o.auth_password = !g_.auth_password.empty() ? g_.auth_password : std::move(password);
  if (o.token.empty() && (o.auth_user.empty() != o.auth_password.empty()))
    fail(ErrorCode::kInvalidArgument, "Basic auth needs both --auth-user and --auth-password (or use --token)");
  if (g_.timeout_s <= 0) fail(ErrorCode::kInvalidArgument, "--timeout must be positive");
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(g_.timeout_s * 1000));
  return must(VmmClient::create(std::move(o)));
}

VmmClient Cli::client_for(const dc::ClientConfigFile::Context& c) const {
  return make_client(c.url, c.auth_token, c.auth_user, c.auth_password);
}

const VmmClient& Cli::client() {
  if (client_) return *client_;
  auto config = this->config();
  std::optional<std::string> env;
  if (const char* e = std::getenv("DSTACK_VMM_URL")) env = e;
  // Which daemon: --url, --context (DSTACK_VMM_CONTEXT), DSTACK_VMM_URL, the current context,
  // then the config's url, the daemon `vmm switch` chose, the only one running, the default.
  std::string name = g_.context;
  if (name.empty())
    if (const char* e = std::getenv("DSTACK_VMM_CONTEXT")) name = e;
  if (name.empty() && !env) name = config.current_context;
  if (!g_.url && !name.empty()) {
    const auto* ctx = config.find_context(name);
    if (!ctx)
      fail(ErrorCode::kNotFound, "no context named '" + name + "' (`vmmctl context ls` lists them, `vmmctl context add " + name +
                                     " --url URL` adds it)");
    client_ = client_for(*ctx);
    return *client_;
  }
  auto choice = dc::resolve_daemon_url(g_.url, env, config, dc::list_running_daemons(dc::default_discovery_dir()));
  client_ = make_client(choice.url, config.auth_token, config.auth_user, config.auth_password);
  return *client_;
}

bool Cli::interactive() const { return !g_.json && ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO); }

void Cli::progress(const std::string& line) const {
  if (!interactive()) return;
  std::cerr << "\r\033[K" << line << std::flush;
  progress_open_ = true;
}

void Cli::progress_done() const {
  if (progress_open_) std::cerr << "\n";
  progress_open_ = false;
}

void Cli::note(const std::string& line) const {
  progress_done();
  std::cerr << line << "\n";
}

bool Cli::confirm(const std::string& question) const {
  if (g_.yes) return true;
  if (!::isatty(STDIN_FILENO) || !::isatty(STDERR_FILENO)) return false;
  std::cerr << question << " (y/N) " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

void print_json(const Json& j) { std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n"; }

void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kInvalidArgument, std::string("cannot read the ") + what + " " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  if (size > (16 << 20)) fail(ErrorCode::kInvalidArgument, std::string("the ") + what + " " + path + " is larger than 16 MiB");
  in.seekg(0);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string cell(const Json& j, const char* key, const char* fallback) {
  auto it = j.is_object() ? j.find(key) : j.end();
  if (it == j.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string printable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

Json vm_info(Cli& cli, const std::string& id) {
  auto info = must(cli.client().info(id));
  if (!info) fail(ErrorCode::kNotFound, "VM not found: " + id + " (`vmmctl lsvm` lists the VMs)");
  return must_json(*info);
}

}  // namespace vmmctl
