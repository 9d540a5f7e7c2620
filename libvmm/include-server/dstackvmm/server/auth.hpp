// SPDX-License-Identifier: Apache-2.0
// Who may use the management API: upstream's [auth] rules (tokens, HTTP Basic against an
// htpasswd file of bcrypt hashes, ?token= on GET only).
#pragma once


#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Owns its strings: built from an HTTP request's temporaries, views would dangle.
struct AuthRequest {
  std::string method;                      // "GET", "POST", ...
  std::string admin_token;                 // X-Admin-Token header ("" when absent)
  std::string authorization;               // Authorization header ("" when absent)
  std::optional<std::string> query_token;  // the `token` query parameter, if any
};

class Authenticator {
 public:
  // Loads the htpasswd file when auth is enabled. Errors name the file and line: a file with no
  // users, or with a hash that is not bcrypt ($2a$/$2b$/$2y$), is refused.
  static Result<Authenticator> create(const AuthConfig& config);

  bool enabled() const { return enabled_; }
  // Upstream's order: X-Admin-Token (falls through on mismatch), then Bearer or Basic (decide),
  // then ?token= for GET only. Token checks compare SHA-256 digests in constant time.
  bool allows(const AuthRequest& request) const;

  static constexpr const char* kChallenge = "Basic realm=\"dstack-vmm API\"";

 private:
  bool token_ok(std::string_view candidate) const;
  bool user_ok(std::string_view user, std::string_view password) const;

  bool enabled_ = false;
  std::vector<std::string> token_digests_;
  std::vector<std::pair<std::string, std::string>> users_;  // name, bcrypt hash
};

// `query` without its `token=` pairs, so a token never reaches request decoding or logs.
std::string strip_token_param(std::string_view query);
// The value of the first `token=` pair, URL-decoded.
std::optional<std::string> token_param(std::string_view query);

}  // namespace dstackvmm
