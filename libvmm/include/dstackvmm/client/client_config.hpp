// SPDX-License-Identifier: Apache-2.0
// Where a client finds its daemon and its trust: upstream CLI's ~/.dstack-vmm/config.json,
// the discovery files running daemons publish, and the KMS signer whitelist (spec §8).
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::client {

// ~/.dstack-vmm/config.json. Unknown keys are kept when saving.
struct ClientConfigFile {
  std::string url;
  std::string auth_user;
  std::string auth_password;
  std::string auth_token;
  std::string active_vmm;  // a discovery id (or its prefix), set by `vmm switch`
  // Named daemons (`vmmctl context`), one per host, with their credentials; and the one used
  // when neither --url nor --context says otherwise.
  struct Context {
    std::string name, url, auth_token, auth_user, auth_password;
  };
  std::vector<Context> contexts;
  std::string current_context;
  const Context* find_context(const std::string& name) const {
    for (const auto& c : contexts)
      if (c.name == name) return &c;
    return nullptr;
  }
};

DSTACKVMM_EXPORT std::filesystem::path default_client_dir();  // $HOME/.dstack-vmm
// A missing file is an empty config; a file that is not a JSON object is an error naming it.
DSTACKVMM_EXPORT Result<ClientConfigFile> load_client_config(const std::filesystem::path& file);
DSTACKVMM_EXPORT Status save_client_config(const std::filesystem::path& file, const ClientConfigFile& config);

// One running daemon, from its discovery file (files whose pid is gone are skipped).
struct RunningDaemon {
  std::string id;
  int pid = 0;
  std::string address;  // as published: "unix:<path>" or "ip:port"
  std::string url;      // what a client connects to: unix:<absolute path> or http://ip:port
  std::string working_dir;
  std::string node_name;
  std::string version;
  uint64_t started_at = 0;
};
DSTACKVMM_EXPORT std::filesystem::path default_discovery_dir();
DSTACKVMM_EXPORT std::vector<RunningDaemon> list_running_daemons(const std::filesystem::path& dir);

// Upstream's order: an explicit --url > DSTACK_VMM_URL > config `url` > the daemon that
// `active_vmm` names > the only running daemon > http://localhost:8080.
struct UrlChoice {
  std::string url;
  std::string source;  // "--url", "DSTACK_VMM_URL", "config", "active daemon", "the only daemon", "default"
};
DSTACKVMM_EXPORT UrlChoice resolve_daemon_url(const std::optional<std::string>& flag, const std::optional<std::string>& env,
                                              const ClientConfigFile& config, const std::vector<RunningDaemon>& daemons);

// ~/.dstack-vmm/kms-whitelist.json {"trusted_signers": [...]}: keys stored normalized
// (lowercase hex, no 0x), and compared normalized, so an added key matches (upstream stores
// without 0x and compares with it, so its whitelist never matches).
DSTACKVMM_EXPORT Result<std::vector<std::string>> load_trusted_signers(const std::filesystem::path& file);
DSTACKVMM_EXPORT Status save_trusted_signers(const std::filesystem::path& file, const std::vector<std::string>& keys);

}  // namespace dstackvmm::client
