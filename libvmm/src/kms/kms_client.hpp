// SPDX-License-Identifier: Apache-2.0
// The VMM's one call to a KMS: the public key an app's environment is encrypted to.
#pragma once

#include <string>
#include <string_view>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// POST <kms_url>/prpc/GetAppEnvEncryptPubKey?json {"app_id": "<hex>"}; returns the KMS's JSON
// object as text (public_key, signature, ... as the KMS sends them). Bounded: 5 s to connect,
// 60 s to answer, 1 MiB of answer. kFailedPrecondition "KMS is not configured" for an empty url,
// kUnavailable naming the KMS when it cannot be reached or answers an error.
Result<std::string> kms_app_env_encrypt_pub_key(const std::string& kms_url, std::string_view app_id_hex);

}  // namespace dstackvmm::internal
