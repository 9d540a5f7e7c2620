// SPDX-License-Identifier: Apache-2.0
// vmmctl: the command line over a running dstack-vmm (ours or upstream's), for people and for
// scripts. Each command is argument handling around libdstackvmm-client calls.
#include <iostream>

#include "cli.hpp"

namespace {

constexpr const char* kFooter = R"(Connection: --url, else DSTACK_VMM_URL, else `url` in ~/.dstack-vmm/config.json, else the
daemon `vmm switch` chose, else the only running daemon (`vmm ls`), else http://localhost:8080.
URLs: unix:/path/vmm.sock, http://host:port, https://host:port.

For scripts: --json prints data only (the daemon's wire field names) on stdout; messages go to
stderr. Exit codes: 0 ok, 1 usage or invalid input, 2 not found, 3 conflict or wrong state,
4 daemon (or the guest/KMS it needed) unreachable, 5 authentication refused, 6 the daemon failed.)";

}  // namespace

int main(int argc, char** argv) {
  vmmctl::Globals g;
  vmmctl::Cli cli(g);
  CLI::App app{"vmmctl: manage the VMs of a dstack-vmm daemon"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global flags work after the command too: `vmmctl lsvm --json`
  app.add_option("--url", g.url, "daemon URL: unix:/path/vmm.sock, http://host:port or https://host:port");
  app.add_option("--context", g.context, "a saved daemon (`vmmctl context ls`)")->envname("DSTACK_VMM_CONTEXT");
  app.add_flag("--all-contexts", g.all_contexts, "lsvm: the VMs of every saved context, one host after another");
  app.add_option("--token", g.token, "bearer token")->envname("DSTACK_VMM_TOKEN");
  app.add_option("--auth-user", g.auth_user, "Basic auth user")->envname("DSTACK_VMM_AUTH_USER");
  app.add_option("--auth-password", g.auth_password, "Basic auth password")->envname("DSTACK_VMM_AUTH_PASSWORD");
  app.add_flag("--json", g.json, "print JSON data only (for scripts)");
  app.add_flag("-y,--yes", g.yes, "answer yes to questions (trust an unlisted KMS signer); for scripts");
  app.add_option("--timeout", g.timeout_s, "seconds one call to the daemon may take, and --wait's limit")->capture_default_str();

  vmmctl::add_vm_commands(app, cli);
  vmmctl::add_deploy_commands(app, cli);
  vmmctl::add_host_commands(app, cli);
  vmmctl::add_context_commands(app, cli);
  vmmctl::add_apply_command(app, cli);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? vmmctl::kExitOk : vmmctl::kExitUsage;
  } catch (const vmmctl::Failure& f) {
    cli.progress_done();
    int rc = vmmctl::exit_code_for(f.error.code);
    if (g.json)
      std::cerr << vmmctl::Json{{"error", f.error.message}, {"code", dstackvmm::error_code_name(f.error.code)}, {"exit_code", rc}}.dump()
                << "\n";
    else
      std::cerr << "vmmctl: " << f.error.message << "\n";
    return rc;
  } catch (const std::exception& e) {  // a bug of ours: still one line and a documented code
    cli.progress_done();
    std::cerr << "vmmctl: internal error: " << e.what() << "\n";
    return vmmctl::kExitFailed;
  }
  return vmmctl::kExitOk;
}
