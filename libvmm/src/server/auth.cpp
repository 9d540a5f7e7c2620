// SPDX-License-Identifier: Apache-2.0
// Who may use the management API: upstream's [auth] rules.
#include <dstackvmm/server/auth.hpp>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <fstream>

#include "base/crypto.hpp"

namespace dstackvmm {

namespace {

bool equal_digest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  return true;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace

namespace {
constexpr int kMaxBcryptCost = 14;  // about a second per check on one core
}  // namespace

Result<Authenticator> Authenticator::create(const AuthConfig& config) {
  Authenticator a;
  a.enabled_ = config.enabled;
  if (!config.enabled) return a;
  for (const auto& t : config.tokens)
    if (!t.empty()) a.token_digests_.push_back(internal::sha256(t));
  if (config.htpasswd_file.empty()) return a;
  std::ifstream in(config.htpasswd_file);
  if (!in) return make_error(ErrorCode::kInvalidArgument, config.htpasswd_file + ": cannot read htpasswd file");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto colon = line.find(':');
    std::string hash = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (colon == 0 || colon == std::string::npos ||
        !(hash.rfind("$2a$", 0) == 0 || hash.rfind("$2b$", 0) == 0 || hash.rfind("$2y$", 0) == 0))
      return make_error(ErrorCode::kInvalidArgument, config.htpasswd_file + ":" + std::to_string(n) +
                                                         ": only bcrypt entries (user:$2y$...) are supported");
    // "$2y$NN$...": each check costs 2^NN rounds, and any client can ask for one with a Basic
    // header; a cost of 25 would hold a worker for minutes per attempt.
    int cost = hash.size() > 7 && std::isdigit(static_cast<unsigned char>(hash[4])) &&
                       std::isdigit(static_cast<unsigned char>(hash[5])) && hash[6] == '$'
                   ? (hash[4] - '0') * 10 + (hash[5] - '0')
                   : -1;
    if (cost < 4 || cost > kMaxBcryptCost)
      return make_error(ErrorCode::kInvalidArgument, config.htpasswd_file + ":" + std::to_string(n) + ": bcrypt cost must be 4.." +
                                                         std::to_string(kMaxBcryptCost) + " (each check costs 2^cost rounds)");
    a.users_.emplace_back(line.substr(0, colon), hash);
  }
  if (a.users_.empty()) return make_error(ErrorCode::kInvalidArgument, config.htpasswd_file + ": no users in htpasswd file");
  return a;
}

bool Authenticator::token_ok(std::string_view candidate) const {
  std::string digest = internal::sha256(candidate);
  bool ok = false;
  for (const auto& t : token_digests_) ok |= equal_digest(digest, t);  // no early exit
  return ok;
}

bool Authenticator::user_ok(std::string_view user, std::string_view password) const {
  for (const auto& [name, hash] : users_) {
    if (name != user) continue;
    crypt_data data{};
    const char* out = crypt_r(std::string(password).c_str(), hash.c_str(), &data);
    return out && equal_digest(internal::sha256(out), internal::sha256(hash));
  }
  return false;
}

bool Authenticator::allows(const AuthRequest& r) const {
  if (!enabled_) return true;
  if (!r.admin_token.empty() && token_ok(r.admin_token)) return true;
  std::string_view authorization = r.authorization;
  if (iequals_prefix(authorization, "Bearer ")) return token_ok(authorization.substr(7));
  if (iequals_prefix(authorization, "Basic ")) {
    auto decoded = base64_decode(authorization.substr(6));
    if (!decoded) return false;
    auto colon = decoded->find(':');
    std::string user = decoded->substr(0, colon);
    std::string pass = colon == std::string::npos ? "" : decoded->substr(colon + 1);
    return user_ok(user, pass) || (!pass.empty() && token_ok(pass)) || (pass.empty() && token_ok(user));
  }
  if (r.method == "GET" && r.query_token) return token_ok(*r.query_token);
  return false;
}

std::string strip_token_param(std::string_view query) {
  std::string out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair == "token" || pair.substr(0, 6) == "token=") continue;
    if (!out.empty()) out += '&';
    out += pair;
  }
  return out;
}

std::optional<std::string> token_param(std::string_view query) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.substr(0, 6) == "token=") return url_decode(pair.substr(6));
  }
  return std::nullopt;
}

}  // namespace dstackvmm
