// SPDX-License-Identifier: Apache-2.0
#include "env_key.hpp"

#include <algorithm>

#include <dstackvmm/client/client_config.hpp>

namespace vmmctl {

namespace dc = dstackvmm::client;


std::string encrypt_env_for_app(Cli& cli, const std::string& kms_url, const std::string& app_id_hex,
                                const std::vector<dc::EnvVar>& env) {
  dc::ClientOptions o;
  o.url = kms_url;
  o.timeout = std::chrono::seconds(60);
  o.peer = "the KMS";
  VmmClient kms = must(VmmClient::create(o));
  dc::EnvKeyResponse key = must(kms.env_key(app_id_hex));
  auto signer = dc::recover_env_key_signer(app_id_hex, key);
  auto trusted = must(dc::load_trusted_signers(dc::default_client_dir() / "kms-whitelist.json"));
  if (signer.ok() && signer->legacy)
    cli.note("warning: the KMS signed the key without a timestamp (legacy signature)");
  bool listed = false;
  if (signer.ok()) {
    auto n = dc::normalize_signer_key(signer->signer);
    listed = n.ok() && std::find(trusted.begin(), trusted.end(), *n) != trusted.end();
  }
  if (!listed) {
    std::string who = signer.ok() ? "signer " + signer->signer : "a signer that cannot be verified (" + signer.error().message + ")";
    if (!cli.confirm("The env key of app " + app_id_hex + " comes from " + who + ", which is not in the whitelist. Continue?"))
      fail(ErrorCode::kFailedPrecondition,
           "the env key of app " + app_id_hex + " comes from " + who + ", not in ~/.dstack-vmm/kms-whitelist.json; " +
               (signer.ok() ? "trust it with `vmmctl kms add " + signer->signer + "`, or " : "") + "pass --yes to go on anyway");
    if (cli.globals().yes) cli.note("warning: trusting " + who + " (--yes)");
  }
  return must(dc::encrypt_env(env, key.public_key));
}

}  // namespace vmmctl
