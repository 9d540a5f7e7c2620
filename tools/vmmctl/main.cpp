// SPDX-License-Identifier: Apache-2.0
// vmmctl: the command line over a running dstack-vmm. Output for scripts is JSON.
#include <sys/socket.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

// Exit codes scripts can rely on.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitRpcError = 4;

int call(const std::string& url, const std::string& method, const std::string& body) {
  std::unique_ptr<httplib::Client> client;
  if (url.rfind("unix:", 0) == 0) {
    client = std::make_unique<httplib::Client>(url.substr(5));
    client->set_address_family(AF_UNIX);
  } else {
    client = std::make_unique<httplib::Client>(url);
  }
  auto res = client->Post("/prpc/" + method + "?json", body, "application/json");
  if (!res) {
    std::cerr << "vmmctl: cannot reach " << url << ": " << httplib::to_string(res.error()) << '\n';
    return kExitUnreachable;
  }
  if (res->status != 200) {
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    std::cerr << "vmmctl: " << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : res->body) << '\n';
    return kExitRpcError;
  }
  std::cout << res->body << '\n';
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmmctl: manage VMs on a dstack-vmm daemon"};
  std::string url = "http://127.0.0.1:8080";
  if (const char* env = std::getenv("DSTACK_VMM_URL")) url = env;
  app.add_option("--url", url, "daemon URL: http://HOST:PORT or unix:/path/vmm.sock (env DSTACK_VMM_URL)");
  app.require_subcommand(1);
  auto* version = app.add_subcommand("version", "print the daemon's version as JSON");
  auto* meta = app.add_subcommand("meta", "print the daemon's GetMeta as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (version->parsed()) return call(url, "Version", "{}");
  if (meta->parsed()) return call(url, "GetMeta", "{}");
  return kExitUsage;
}
