// SPDX-License-Identifier: Apache-2.0
// A stand-in KMS for the CLI's env tests: a real server on loopback that answers
// GetAppEnvEncryptPubKey with one X25519 key, signed (v1 and legacy) by a secp256k1 key the way
// a KMS signs it; and the guest's side, which opens what was encrypted to that key.
//   test_kms serve DIR           writes DIR/env.key and DIR/signer.pub, prints its port, serves
//   test_kms decrypt DIR FILE    prints the plaintext of an encrypted env
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <dstackvmm/client/env_crypto.hpp>

#include "base/text_util.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string sign(secp256k1_context* ctx, const unsigned char* secret, const std::string& digest) {
  secp256k1_ecdsa_recoverable_signature sig;
  secp256k1_ecdsa_sign_recoverable(ctx, &sig, reinterpret_cast<const unsigned char*>(digest.data()), secret, nullptr, nullptr);
  unsigned char out[64];
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, out, &recid, &sig);
  return std::string(reinterpret_cast<char*>(out), 64) + static_cast<char>(recid);
}

int serve(const std::string& dir) {
  auto key = *generate_x25519_key_pair();
  secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  unsigned char secret[32];
  for (int i = 0; i < 32; ++i) secret[i] = static_cast<unsigned char>(0x40 + i);
  secp256k1_pubkey pk;
  if (!secp256k1_ec_pubkey_create(ctx, &pk, secret)) return 1;
  unsigned char pub[33];
  size_t len = sizeof pub;
  secp256k1_ec_pubkey_serialize(ctx, pub, &len, &pk, SECP256K1_EC_COMPRESSED);
  std::ofstream(dir + "/env.key") << to_hex(key.private_key);
  std::ofstream(dir + "/signer.pub") << "0x" << to_hex(std::string_view(reinterpret_cast<char*>(pub), len));

  httplib::Server http;
  http.Post("/prpc/GetAppEnvEncryptPubKey", [&](const httplib::Request& req, httplib::Response& res) {
    auto in = nlohmann::json::parse(req.body, nullptr, false);
    auto app_id = in.is_object() && in["app_id"].is_string() ? from_hex(in["app_id"].get<std::string>()) : std::nullopt;
    if (!app_id || app_id->size() != 20) {
      res.status = 400;
      res.set_content(R"({"error":"bad app id"})", "application/json");
      return;
    }
    uint64_t now = static_cast<uint64_t>(std::time(nullptr));
    nlohmann::json out{{"public_key", to_hex(key.public_key)},
                       {"signature", to_hex(sign(ctx, secret, env_key_digest(*app_id, key.public_key, std::nullopt)))},
                       {"timestamp", now},
                       {"signature_v1", to_hex(sign(ctx, secret, env_key_digest(*app_id, key.public_key, now)))}};
    res.set_content(out.dump(), "application/json");
  });
  int port = http.bind_to_any_port("127.0.0.1");
  if (port <= 0) return 1;
  std::cout << port << std::endl;
  http.listen_after_bind();  // until the test kills it
  secp256k1_context_destroy(ctx);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 2 ? argv[1] : "";
  if (mode == "serve") return serve(argv[2]);
  if (mode == "decrypt" && argc == 4) {
    auto priv = from_hex(slurp(std::string(argv[2]) + "/env.key"));
    auto plain = priv ? decrypt_env(slurp(argv[3]), *priv) : Result<std::string>(Error{ErrorCode::kInvalidArgument, "no key"});
    if (!plain.ok()) {
      std::cerr << plain.error().message << "\n";
      return 1;
    }
    std::cout << *plain << "\n";
    return 0;
  }
  std::cerr << "usage: test_kms serve DIR | test_kms decrypt DIR FILE\n";
  return 2;
}
