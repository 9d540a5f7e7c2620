// SPDX-License-Identifier: Apache-2.0
// Hashes and encodings the wire format needs, from OpenSSL.
#include "base/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <fstream>
#include <vector>
#include <stdexcept>

#include "base/text_util.hpp"

namespace dstackvmm::internal {

std::string sha256(std::string_view data) {
  // Fetched once: OpenSSL 3 looks the algorithm up again on every SHA256() call, which was
  // most of the cost of hashing a VM id into its MAC for each VM of a listing.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char out[SHA256_DIGEST_LENGTH];
  if (!md || !EVP_Digest(data.data(), data.size(), out, nullptr, md, nullptr))
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");  // only on a broken host; never crosses the API
  return out;
}

std::string new_uuid_v4() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string h = to_hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string sha256_file_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> block(1 << 20);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, block.data(), static_cast<size_t>(in.gcount()));
  }
  bool failed = in.bad();
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  if (failed) return "";
  return to_hex(std::string_view(reinterpret_cast<char*>(md), len));
}

}  // namespace dstackvmm::internal
