// SPDX-License-Identifier: Apache-2.0
// What every vmmctl command shares: the connection, the output mode, the one mapping of
// library errors to exit codes, and the few output helpers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <dstackvmm/client/client_config.hpp>
#include <dstackvmm/client/vmm_client.hpp>

#include "client/json_reply.hpp"

namespace vmmctl {

using dstackvmm::Error;
using dstackvmm::ErrorCode;
using dstackvmm::Status;
using dstackvmm::client::Json;
using dstackvmm::client::VmmClient;
using dstackvmm::client::field_array;
using dstackvmm::client::field_bool;
using dstackvmm::client::field_object;
using dstackvmm::client::field_string;
using dstackvmm::client::field_uint;

// Documented in `vmmctl --help` and the README; scripts rely on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,        // bad flags or input (ours or the daemon's verdict)
  kExitNotFound = 2,     // no such VM, image or process
  kExitConflict = 3,     // conflict or wrong state: in use, exists, stopped, pool full
  kExitUnreachable = 4,  // the daemon (or the guest / KMS it needed) did not answer
  kExitAuth = 5,         // the daemon refused the credentials
  kExitFailed = 6,       // the daemon failed doing it (I/O, QEMU, a bug)
};

int exit_code_for(ErrorCode code);

// A failed command: what to print, and the exit code it maps to.
struct Failure {
  Error error;
};

struct Globals {
  std::optional<std::string> url;
  std::string context;       // --context (or DSTACK_VMM_CONTEXT): a named daemon of `vmmctl context`
  bool all_contexts = false;  // lsvm: every context's VMs
  std::string token, auth_user, auth_password;
  bool json = false;
  bool yes = false;    // answer yes to questions (untrusted KMS signer); scripts pass it
  double timeout_s = 60;
};

class Cli {
 public:
  explicit Cli(Globals& g) : g_(g) {}

  // The client, connected on first use (so `compose` and `kms` need no daemon).
  const VmmClient& client();
  // A client of one saved context (--all-contexts), with the command line's credentials
  // taking precedence as they do for client().
  VmmClient client_for(const dstackvmm::client::ClientConfigFile::Context& context) const;
  // The saved contexts (~/.dstack-vmm/config.json).
  dstackvmm::client::ClientConfigFile config() const;
  const Globals& globals() const { return g_; }
  bool json() const { return g_.json; }
  // Progress lines go to stderr, only when a person watches (stdout and stderr are terminals).
  bool interactive() const;
  void progress(const std::string& line) const;  // rewrites one line on a terminal
  void progress_done() const;
  // A message for people, on stderr (never data).
  void note(const std::string& line) const;
  // Asks a yes/no question on the terminal; `--yes` answers yes; with no terminal, no.
  bool confirm(const std::string& question) const;

 private:
  VmmClient make_client(std::string url, std::string token, std::string user, std::string password) const;
  Globals& g_;
  std::optional<VmmClient> client_;
  mutable bool progress_open_ = false;
};

// Aborts the command with the error (thrown; main() prints it and picks the exit code).
[[noreturn]] void fail(Error error);
[[noreturn]] void fail(ErrorCode code, std::string message);
template <class T>
T must(dstackvmm::Result<T> r) {
  if (!r.ok()) fail(r.error());
  return std::move(r).value();
}
inline void must(const Status& s) {
  if (!s.ok()) fail(s.error());
}
// A reply the client hands out as JSON text, read for printing and tables.
inline Json must_json(const dstackvmm::Result<std::string>& r) { return must(dstackvmm::client::parse_reply(r)); }

// Output.
void print_json(const Json& j);
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
std::string read_text_file(const std::string& path, const char* what);
// A reply field as table text: strings as they are, other values as JSON, missing or null as `fallback`.
std::string cell(const Json& j, const char* key, const char* fallback = "");
// Text from a guest or a daemon made safe for a terminal: control bytes (escape sequences
// included) become '?', so a hostile guest cannot move the cursor or recolour the screen.
std::string printable(std::string text);
// GetInfo's VM, or exit 2 naming the id.
Json vm_info(Cli& cli, const std::string& id);

// Registration of the command groups (each in its own file).
void add_vm_commands(CLI::App& app, Cli& cli);      // lsvm info start stop remove resize logs
void add_deploy_commands(CLI::App& app, Cli& cli);  // compose deploy update* 
void add_host_commands(CLI::App& app, Cli& cli);
void add_context_commands(CLI::App& app, Cli& cli);  // context add ls use rm    // lsimage lsgpu image guest host reload version meta vmm kms
void add_apply_command(CLI::App& app, Cli& cli);    // apply

}  // namespace vmmctl
