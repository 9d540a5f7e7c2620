// SPDX-License-Identifier: Apache-2.0
// The app's env key from a KMS, checked against the signer whitelist before anything is
// encrypted to it.
#pragma once

#include <string>
#include <vector>

#include <dstackvmm/client/env_crypto.hpp>

#include "cli.hpp"

namespace vmmctl {

// Asks `kms_url` (directly, as upstream's CLI) for app `app_id_hex`'s key, recovers the signer
// and trusts it if whitelisted (`vmmctl kms add`), else asks; --yes trusts with a warning.
// Then encrypts `env` to it.
std::string encrypt_env_for_app(Cli& cli, const std::string& kms_url, const std::string& app_id_hex,
                                const std::vector<dstackvmm::client::EnvVar>& env);

}  // namespace vmmctl
