// SPDX-License-Identifier: Apache-2.0
// Env encryption with OpenSSL (X25519, AES-256-GCM); the KMS signature check with
// libsecp256k1 (recovery) and Crypto++ (Keccak-256, which OpenSSL 3.0 lacks).
#include <dstackvmm/client/env_crypto.hpp>

#include <openssl/evp.h>

#include <memory>

#include <crypto++/keccak.h>
#include <nlohmann/json.hpp>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "base/crypto.hpp"
#include "base/text_util.hpp"

namespace dstackvmm::client {

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

constexpr size_t kKeyLen = 32, kNonceLen = 12, kTagLen = 16;

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Error crypto_error(const char* what) { return make_error(ErrorCode::kInternal, std::string("OpenSSL failed to ") + what); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// X25519(own private, peer public): the AES key, used as is (no KDF), as §10 says.
Result<std::string> shared_secret(EVP_PKEY* own, std::string_view peer_public) {
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, u8(peer_public), peer_public.size()), EVP_PKEY_free);
  if (!peer) return make_error(ErrorCode::kInvalidArgument, "the public key is not an X25519 key");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(own, nullptr), EVP_PKEY_CTX_free);
  size_t len = kKeyLen;
  std::string secret(kKeyLen, '\0');
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &len) != 1 || len != kKeyLen)
    return make_error(ErrorCode::kInvalidArgument, "X25519 with this public key failed (a low-order point?)");
  return secret;
}

std::string raw_key(EVP_PKEY* key, bool is_public) {
  std::string out(kKeyLen, '\0');
  size_t len = kKeyLen;
  int ok = is_public ? EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(out.data()), &len)
                     : EVP_PKEY_get_raw_private_key(key, reinterpret_cast<unsigned char*>(out.data()), &len);
  return ok == 1 && len == kKeyLen ? out : std::string();
}

PkeyPtr new_x25519() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &key) != 1) key = nullptr;
  return PkeyPtr(key, EVP_PKEY_free);
}

}  // namespace

Result<std::vector<EnvVar>> parse_env_file(std::string_view text) {
  std::vector<EnvVar> out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return make_error(ErrorCode::kInvalidArgument, "env file line " + std::to_string(line_no) + ": expected KEY=VALUE");
    std::string_view key = trim(line.substr(0, eq));
    if (key.empty())
      return make_error(ErrorCode::kInvalidArgument, "env file line " + std::to_string(line_no) + ": the key is empty");
    out.push_back({std::string(key), std::string(trim(line.substr(eq + 1)))});
  }
  return out;
}

std::string env_plaintext(const std::vector<EnvVar>& env) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : env) list.push_back({{"key", e.key}, {"value", e.value}});
  return nlohmann::json{{"env", list}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<X25519KeyPair> generate_x25519_key_pair() {
  PkeyPtr key = new_x25519();
  if (!key) return crypto_error("generate an X25519 key");
  return X25519KeyPair{raw_key(key.get(), false), raw_key(key.get(), true)};
}

Result<std::string> encrypt_env(const std::vector<EnvVar>& env, std::string_view app_public_key) {
  if (app_public_key.size() != kKeyLen)
    return make_error(ErrorCode::kInvalidArgument, "the app's env public key must be 32 bytes, not " +
                                                        std::to_string(app_public_key.size()));
  PkeyPtr eph = new_x25519();
  if (!eph) return crypto_error("generate an X25519 key");
  auto key = shared_secret(eph.get(), app_public_key);
  if (!key.ok()) return key.error();
  std::string nonce = internal::random_bytes(kNonceLen);
  std::string plain = env_plaintext(env);
  std::string out = raw_key(eph.get(), true) + nonce;
  size_t head = out.size();
  out.resize(head + plain.size() + kTagLen);
  auto* dst = reinterpret_cast<unsigned char*>(out.data()) + head;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int n = 0, m = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u8(*key), u8(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), dst, &n, u8(plain), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), dst + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen, dst + n + m) != 1)
    return crypto_error("encrypt with AES-256-GCM");
  return out;
}

Result<std::string> decrypt_env(std::string_view sealed, std::string_view private_key) {
  if (sealed.size() < kKeyLen + kNonceLen + kTagLen)
    return make_error(ErrorCode::kInvalidArgument, "encrypted env is too short");
  PkeyPtr own(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, u8(private_key), private_key.size()), EVP_PKEY_free);
  if (!own) return make_error(ErrorCode::kInvalidArgument, "the private key is not an X25519 key");
  auto key = shared_secret(own.get(), sealed.substr(0, kKeyLen));
  if (!key.ok()) return key.error();
  std::string_view nonce = sealed.substr(kKeyLen, kNonceLen);
  std::string_view body = sealed.substr(kKeyLen + kNonceLen, sealed.size() - kKeyLen - kNonceLen - kTagLen);
  std::string tag(sealed.substr(sealed.size() - kTagLen));
  std::string plain(body.size(), '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int n = 0, m = 0;
  auto* dst = reinterpret_cast<unsigned char*>(plain.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u8(*key), u8(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), dst, &n, u8(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), dst + n, &m) != 1)
    return make_error(ErrorCode::kInvalidArgument, "encrypted env does not open with this key (wrong key or altered bytes)");
  plain.resize(static_cast<size_t>(n + m));
  return plain;
}

std::string env_key_digest(std::string_view app_id, std::string_view public_key, std::optional<uint64_t> timestamp) {
  std::string msg = "dstack-env-encrypt-pubkey:";
  msg += app_id;
  if (timestamp)
    for (int shift = 56; shift >= 0; shift -= 8) msg += static_cast<char>((*timestamp >> shift) & 0xff);
  msg += public_key;
  CryptoPP::Keccak_256 keccak;
  std::string digest(CryptoPP::Keccak_256::DIGESTSIZE, '\0');
  keccak.CalculateDigest(reinterpret_cast<CryptoPP::byte*>(digest.data()), u8(msg), msg.size());
  return digest;
}

namespace {
Result<std::string> recover(std::string_view digest, std::string_view sig) {
  if (sig.size() != 65) return make_error(ErrorCode::kInvalidArgument, "a signature must be 65 bytes");
  int recid = static_cast<unsigned char>(sig[64]);
  if (recid >= 27) recid -= 27;  // Ethereum's v
  if (recid < 0 || recid > 3) return make_error(ErrorCode::kInvalidArgument, "bad recovery id in the signature");
  static secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  secp256k1_ecdsa_recoverable_signature rs;
  secp256k1_pubkey key;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, u8(sig), recid) ||
      !secp256k1_ecdsa_recover(ctx, &key, &rs, u8(digest)))
    return make_error(ErrorCode::kInvalidArgument, "the signature does not recover a key");
  unsigned char out[33];
  size_t len = sizeof out;
  secp256k1_ec_pubkey_serialize(ctx, out, &len, &key, SECP256K1_EC_COMPRESSED);
  return "0x" + to_hex(std::string_view(reinterpret_cast<char*>(out), len));
}
}  // namespace

Result<SignerCheck> recover_env_key_signer(std::string_view app_id_hex, const EnvKeyResponse& r) {
  auto id = from_hex(app_id_hex);
  if (!id || id->size() != 20)
    return make_error(ErrorCode::kInvalidArgument, "app id '" + std::string(app_id_hex) + "' is not 40 hex digits");
  const std::string& app_id = *id;
  if (!r.signature_v1.empty()) {
    auto who = recover(env_key_digest(app_id, r.public_key, r.timestamp), r.signature_v1);
    if (!who.ok()) return who.error().context("signature_v1");
    return SignerCheck{*who, false};
  }
  if (r.signature.empty()) return make_error(ErrorCode::kInvalidArgument, "the KMS sent no signature for the key");
  auto who = recover(env_key_digest(app_id, r.public_key, std::nullopt), r.signature);
  if (!who.ok()) return who.error().context("signature");
  return SignerCheck{*who, true};
}

Result<std::string> normalize_signer_key(std::string_view key) {
  auto raw = from_hex(trim(key));
  if (!raw || raw->size() != 33 || ((*raw)[0] != 2 && (*raw)[0] != 3))
    return make_error(ErrorCode::kInvalidArgument, "'" + std::string(key) +
                                                       "' is not a compressed secp256k1 public key (33 bytes of hex, starting 02 or 03)");
  return to_hex(*raw);
}

}  // namespace dstackvmm::client
