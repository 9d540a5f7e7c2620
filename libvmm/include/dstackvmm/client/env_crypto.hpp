// SPDX-License-Identifier: Apache-2.0
// Encrypted environment variables as dstack clients send them (spec/vmm-api.md §10), and the
// check of the KMS's signature over the key they are encrypted to (§8).
#pragma once

#include <dstackvmm/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::client {

struct EnvVar {
  std::string key;
  std::string value;
  bool operator==(const EnvVar&) const = default;
};

// A .env file: KEY=VALUE lines, split on the first '=', both sides trimmed; blank lines and
// lines starting with '#' skipped. A line without '=' or with an empty key is an error that
// names its line number.
DSTACKVMM_EXPORT Result<std::vector<EnvVar>> parse_env_file(std::string_view text);

// {"env":[{"key":"K","value":"V"},...]}: the plaintext the guest decrypts.
DSTACKVMM_EXPORT std::string env_plaintext(const std::vector<EnvVar>& env);

// eph_pk(32) || nonce(12) || AES-256-GCM(ciphertext || tag), the key being X25519(eph_sk,
// app_public_key) used directly. `app_public_key` is 32 raw bytes.
DSTACKVMM_EXPORT Result<std::string> encrypt_env(const std::vector<EnvVar>& env, std::string_view app_public_key);

// The other side, as the guest does it: for tests and tools that hold the private key.
DSTACKVMM_EXPORT Result<std::string> decrypt_env(std::string_view sealed, std::string_view private_key);

struct X25519KeyPair {
  std::string private_key;  // 32 raw bytes
  std::string public_key;   // 32 raw bytes
};
DSTACKVMM_EXPORT Result<X25519KeyPair> generate_x25519_key_pair();

// What GetAppEnvEncryptPubKey answered, decoded from hex.
struct EnvKeyResponse {
  std::string public_key;    // 32 bytes
  std::string signature;     // 65 bytes, legacy form
  std::string signature_v1;  // 65 bytes, with the timestamp; preferred when present
  uint64_t timestamp = 0;
};

// keccak256("dstack-env-encrypt-pubkey" ":" app_id [timestamp as 8 bytes big-endian] public_key):
// the digest the KMS signs; with a timestamp for signature_v1.
DSTACKVMM_EXPORT std::string env_key_digest(std::string_view app_id, std::string_view public_key,
                                            std::optional<uint64_t> timestamp);

struct SignerCheck {
  std::string signer;  // "0x" + the 33-byte compressed secp256k1 key, hex
  bool legacy = false; // recovered from the legacy signature (no timestamp)
};

// Recovers who signed `response` for the app `app_id_hex` (40 hex digits, 0x allowed):
// signature_v1 when present, else the legacy signature. kInvalidArgument when neither recovers.
DSTACKVMM_EXPORT Result<SignerCheck> recover_env_key_signer(std::string_view app_id_hex, const EnvKeyResponse& response);

// "0x02ab..." / "02AB..." -> "02ab...": how signer keys are compared and stored. Errors unless
// it is 33 bytes of hex starting 02 or 03.
DSTACKVMM_EXPORT Result<std::string> normalize_signer_key(std::string_view key);

}  // namespace dstackvmm::client
