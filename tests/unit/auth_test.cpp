// SPDX-License-Identifier: Apache-2.0
// Upstream's auth rules: token headers, Bearer, Basic (htpasswd bcrypt or token), ?token= on GET.
#include <catch2/catch.hpp>

#include <crypt.h>
#include <openssl/evp.h>

#include <dstackvmm/server/auth.hpp>

#include "../support/manager_env.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;

namespace {

std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt));
  crypt_data data{};
  return crypt_r(password.c_str(), salt, &data);
}

std::string basic(const std::string& user_pass) {
  std::string out(4 * ((user_pass.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(user_pass.data()), static_cast<int>(user_pass.size()));
  out.resize(static_cast<size_t>(n));
  return "Basic " + out;
}

}  // namespace

TEST_CASE("auth follows upstream's decision order", "[auth]") {
  TempDir dir("auth");
  write_file(dir.path() / "htpasswd", "# operators\n\nalice:" + bcrypt("wonderland") + "\n");
  AuthConfig c;
  c.enabled = true;
  c.tokens = {"t0k3n", ""};
  c.htpasswd_file = (dir.path() / "htpasswd").string();
  auto a = Authenticator::create(c);
  INFO((a.ok() ? "" : a.error().message));
  REQUIRE(a.ok());
  auto allows = [&](AuthRequest r) { return a->allows(r); };
  CHECK_FALSE(allows({"GET", "", "", std::nullopt}));
  CHECK(allows({"POST", "t0k3n", "", std::nullopt}));                 // X-Admin-Token
  CHECK(allows({"POST", "wrong", "Bearer t0k3n", std::nullopt}));     // a wrong admin token falls through
  CHECK_FALSE(allows({"POST", "", "Bearer wrong", std::nullopt}));
  CHECK_FALSE(allows({"GET", "", "Bearer wrong", std::string("t0k3n")}));  // Bearer decides at once
  CHECK(allows({"POST", "", basic("alice:wonderland"), std::nullopt}));
  CHECK_FALSE(allows({"POST", "", basic("alice:wrong"), std::nullopt}));
  CHECK_FALSE(allows({"POST", "", basic("bob:wonderland"), std::nullopt}));
  CHECK(allows({"POST", "", basic("anyone:t0k3n"), std::nullopt}));  // password = a token
  CHECK(allows({"POST", "", basic("t0k3n:"), std::nullopt}));        // user = a token, empty password
  CHECK_FALSE(allows({"POST", "", "Basic !!notbase64", std::nullopt}));
  CHECK(allows({"GET", "", "", std::string("t0k3n")}));
  CHECK_FALSE(allows({"POST", "", "", std::string("t0k3n")}));  // ?token= only on GET
  CHECK_FALSE(allows({"GET", "", "", std::string("")}));          // empty tokens never match
}

TEST_CASE("auth off allows everything; on with nothing configured denies everything", "[auth]") {
  auto off = Authenticator::create(AuthConfig{});
  REQUIRE(off.ok());
  CHECK(off->allows({"POST", "", "", std::nullopt}));
  AuthConfig on;
  on.enabled = true;
  auto none = Authenticator::create(on);
  REQUIRE(none.ok());
  CHECK_FALSE(none->allows({"GET", "", "Bearer ", std::string("")}));
}

TEST_CASE("bad htpasswd files are refused naming file and line", "[auth]") {
  TempDir dir("auth");
  AuthConfig c;
  c.enabled = true;
  c.htpasswd_file = (dir.path() / "htpasswd").string();
  write_file(c.htpasswd_file, "# nothing\n");
  CHECK(Authenticator::create(c).error().message == c.htpasswd_file + ": no users in htpasswd file");
  write_file(c.htpasswd_file, "alice:{SHA}abc\n");
  CHECK(Authenticator::create(c).error().message == c.htpasswd_file + ":1: only bcrypt entries (user:$2y$...) are supported");
  // A cost of 25 would make every Basic attempt for alice hold a worker for minutes.
  write_file(c.htpasswd_file, "# ok\nalice:$2y$25$abcdefghijklmnopqrstuu5ZvCZkWqvV0jN1kGgUjR1xU5kgnL.yW\n");
  CHECK(Authenticator::create(c).error().message == c.htpasswd_file + ":2: bcrypt cost must be 4..14 (each check costs 2^cost rounds)");
  c.htpasswd_file = (dir.path() / "missing").string();
  CHECK(Authenticator::create(c).error().message == c.htpasswd_file + ": cannot read htpasswd file");
}

TEST_CASE("the token query parameter is found and stripped", "[auth]") {
  CHECK(token_param("id=1&token=a%2Bb") == std::string("a+b"));
  CHECK_FALSE(token_param("id=1"));
  CHECK(strip_token_param("token=x&id=1&json") == "id=1&json");
  CHECK(strip_token_param("id=1&token=x") == "id=1");
}
