// SPDX-License-Identifier: Apache-2.0
// Encrypted env (spec §10) round trip, and the KMS signature check (§8) against keys signed
// here with libsecp256k1 the way a KMS signs them.
#include <catch2/catch.hpp>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <dstackvmm/client/client_config.hpp>
#include <dstackvmm/client/env_crypto.hpp>

#include "../support/temp_dir.hpp"
#include "base/text_util.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;

namespace {

struct Signer {
  secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  unsigned char secret[32];
  explicit Signer(unsigned char seed) {
    for (int i = 0; i < 32; ++i) secret[i] = static_cast<unsigned char>(seed + i);
  }
  ~Signer() { secp256k1_context_destroy(ctx); }
  std::string public_hex() const {
    secp256k1_pubkey pk;
    REQUIRE(secp256k1_ec_pubkey_create(ctx, &pk, secret));
    unsigned char out[33];
    size_t len = 33;
    secp256k1_ec_pubkey_serialize(ctx, out, &len, &pk, SECP256K1_EC_COMPRESSED);
    return "0x" + to_hex(std::string_view(reinterpret_cast<char*>(out), len));
  }
  std::string sign(const std::string& digest, int v_offset = 0) const {
    secp256k1_ecdsa_recoverable_signature sig;
    REQUIRE(secp256k1_ecdsa_sign_recoverable(ctx, &sig, reinterpret_cast<const unsigned char*>(digest.data()), secret, nullptr, nullptr));
    unsigned char out[64];
    int recid = 0;
    secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, out, &recid, &sig);
    return std::string(reinterpret_cast<char*>(out), 64) + static_cast<char>(recid + v_offset);
  }
};

const std::string kAppId = "d87ba36dacf24bb2281d55978f14500d211b2583";

}  // namespace

TEST_CASE("encrypted env opens with the app's private key, and with nothing else", "[client][crypto]") {
  auto app = *generate_x25519_key_pair();
  std::vector<EnvVar> env{{"API_KEY", "s3cr=t"}, {"DEBUG", "1"}};
  auto sealed = encrypt_env(env, app.public_key);
  REQUIRE(sealed.ok());
  CHECK(sealed->size() == 32 + 12 + env_plaintext(env).size() + 16);  // eph_pk | nonce | ciphertext | tag
  CHECK(*decrypt_env(*sealed, app.private_key) == env_plaintext(env));
  // Fresh ephemeral key and nonce every time.
  CHECK(encrypt_env(env, app.public_key)->substr(0, 44) != sealed->substr(0, 44));

  auto other = *generate_x25519_key_pair();
  CHECK_FALSE(decrypt_env(*sealed, other.private_key).ok());
  std::string tampered = *sealed;
  tampered[50] ^= 1;
  CHECK(decrypt_env(tampered, app.private_key).error().message.find("does not open") != std::string::npos);
  CHECK_FALSE(decrypt_env(sealed->substr(0, 50), app.private_key).ok());
  CHECK(encrypt_env(env, "short").error().message == "the app's env public key must be 32 bytes, not 5");
}

TEST_CASE("the KMS signer is recovered from signature_v1, else from the legacy signature", "[client][crypto]") {
  Signer kms(7);
  auto key = *generate_x25519_key_pair();
  std::string app_id = *from_hex(kAppId);
  EnvKeyResponse r;
  r.public_key = key.public_key;
  r.timestamp = 1700000000;
  r.signature_v1 = kms.sign(env_key_digest(app_id, key.public_key, r.timestamp));
  r.signature = kms.sign(env_key_digest(app_id, key.public_key, std::nullopt), 27);  // Ethereum-style v
  auto who = recover_env_key_signer(kAppId, r);
  REQUIRE(who.ok());
  CHECK(who->signer == kms.public_hex());
  CHECK_FALSE(who->legacy);

  EnvKeyResponse legacy = r;
  legacy.signature_v1.clear();
  CHECK(recover_env_key_signer("0x" + kAppId, legacy)->legacy);
  CHECK(recover_env_key_signer(kAppId, legacy)->signer == kms.public_hex());

  // A key swapped in transit, or a different app, recovers someone else.
  EnvKeyResponse swapped = r;
  swapped.public_key = generate_x25519_key_pair()->public_key;
  auto stranger = recover_env_key_signer(kAppId, swapped);
  CHECK((!stranger.ok() || stranger->signer != kms.public_hex()));
  CHECK(recover_env_key_signer(std::string(40, '0'), r)->signer != kms.public_hex());
  // A changed timestamp breaks the v1 signature too.
  EnvKeyResponse later = r;
  later.timestamp += 1;
  CHECK(recover_env_key_signer(kAppId, later)->signer != kms.public_hex());

  EnvKeyResponse unsigned_key{key.public_key, "", "", 0};
  CHECK(recover_env_key_signer(kAppId, unsigned_key).error().message == "the KMS sent no signature for the key");
  CHECK_FALSE(recover_env_key_signer("xyz", r).ok());
  EnvKeyResponse bad = r;
  bad.signature_v1 = std::string(65, '\0');
  CHECK_FALSE(recover_env_key_signer(kAppId, bad).ok());
}

TEST_CASE("the signer whitelist stores keys normalized, so an added key matches", "[client][crypto]") {
  testing::TempDir dir("kmsw");
  auto file = dir.path() / "sub" / "kms-whitelist.json";
  Signer a(1), b(2);
  CHECK(load_trusted_signers(file)->empty());
  std::string upper = a.public_hex();
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  REQUIRE(save_trusted_signers(file, {*normalize_signer_key(upper), *normalize_signer_key(b.public_hex())}).ok());
  auto keys = *load_trusted_signers(file);
  REQUIRE(keys.size() == 2);
  CHECK(keys[0] == a.public_hex().substr(2));  // lowercase, no 0x
  CHECK(*normalize_signer_key(a.public_hex()) == keys[0]);
  CHECK_FALSE(normalize_signer_key("0x04" + std::string(64, 'a')).ok());
  CHECK_FALSE(normalize_signer_key("zz").ok());
  CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::others_read) == std::filesystem::perms::none);
}
