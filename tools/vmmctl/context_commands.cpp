// SPDX-License-Identifier: Apache-2.0
// Many hosts, one daemon each: named daemons (contexts) with their credentials, saved in
// ~/.dstack-vmm/config.json (mode 0600), chosen with --context or `context use`.
#include <iostream>

#include <dstackvmm/client/client_config.hpp>

#include "cli.hpp"

namespace vmmctl {

namespace dc = dstackvmm::client;

namespace {

const std::filesystem::path& config_file() {
  static const std::filesystem::path file = dc::default_client_dir() / "config.json";
  return file;
}

void save(const dc::ClientConfigFile& c) { must(dc::save_client_config(config_file(), c)); }

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
}

void add(Cli& cli, const std::string& name) {
  if (!valid_name(name)) fail(ErrorCode::kInvalidArgument, "context name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
  const Globals& g = cli.globals();
  if (!g.url) fail(ErrorCode::kInvalidArgument, "context add needs --url (unix:/path/vmm.sock, http://host:port or https://host:port)");
  must(VmmClient::create({.url = *g.url}));  // a URL the client can use, checked now rather than at first use
  auto c = cli.config();
  dc::ClientConfigFile::Context ctx{name, *g.url, g.token, g.auth_user, g.auth_password};
  bool replaced = false;
  for (auto& existing : c.contexts)
    if (existing.name == name) existing = ctx, replaced = true;
  if (!replaced) c.contexts.push_back(ctx);
  if (c.current_context.empty()) c.current_context = name;
  save(c);
  if (cli.json()) print_json(Json{{"name", name}, {"url", *g.url}, {"current", c.current_context == name}});
  else std::cout << (replaced ? "updated" : "added") << " context " << name << " (" << *g.url << ")\n";
}

void list(Cli& cli) {
  auto c = cli.config();
  Json out = Json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& ctx : c.contexts) {
    std::string auth = !ctx.auth_token.empty() ? "token" : !ctx.auth_user.empty() ? "basic (" + ctx.auth_user + ")" : "none";
    out.push_back({{"name", ctx.name}, {"url", ctx.url}, {"auth", auth}, {"current", ctx.name == c.current_context}});
    rows.push_back({ctx.name == c.current_context ? "*" : "", ctx.name, ctx.url, auth});
  }
  if (cli.json()) return print_json(out);
  print_table({"", "Name", "URL", "Auth"}, rows);  // credentials are never printed
}

void use(Cli& cli, const std::string& name) {
  auto c = cli.config();
  if (!c.find_context(name)) fail(ErrorCode::kNotFound, "no context named '" + name + "' (`vmmctl context ls` lists them)");
  c.current_context = name;
  save(c);
  if (cli.json()) print_json(Json{{"current", name}});
}

void remove(Cli& cli, const std::string& name) {
  auto c = cli.config();
  auto before = c.contexts.size();
  std::erase_if(c.contexts, [&](const auto& ctx) { return ctx.name == name; });
  if (c.contexts.size() == before) fail(ErrorCode::kNotFound, "no context named '" + name + "'");
  if (c.current_context == name) c.current_context.clear();
  save(c);
  if (cli.json()) print_json(Json{{"removed", name}});
}

}  // namespace

void add_context_commands(CLI::App& app, Cli& cli) {
  static std::string name;
  auto* ctx = app.add_subcommand("context", "named daemons, one per host, with their credentials (--context NAME picks one)");
  ctx->require_subcommand(1);
  auto* a = ctx->add_subcommand("add", "save a daemon as NAME: vmmctl context add NAME --url URL [--token T | --auth-user U --auth-password P]");
  a->add_option("name", name, "a name: 1-64 of A-Z a-z 0-9 . _ -")->required();
  a->callback([&cli] { add(cli, name); });
  ctx->add_subcommand("ls", "list the contexts (* marks the current one; credentials are not shown)")->callback([&cli] { list(cli); });
  auto* u = ctx->add_subcommand("use", "make NAME the daemon commands talk to");
  u->add_option("name", name, "context name")->required();
  u->callback([&cli] { use(cli, name); });
  auto* r = ctx->add_subcommand("rm", "forget a context");
  r->add_option("name", name, "context name")->required();
  r->callback([&cli] { remove(cli, name); });
}

}  // namespace vmmctl
