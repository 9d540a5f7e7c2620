// SPDX-License-Identifier: Apache-2.0
// JSON from outside is bounded before it is parsed: no stack overflow, no giant allocation.
#include <catch2/catch.hpp>

#include "base/json_limits.hpp"

using namespace dstackvmm::internal;

TEST_CASE("nesting is measured outside strings only", "[json][safety]") {
  CHECK(json_depth(R"({"a":[1,{"b":2}]})", 64) == 3);
  CHECK(json_depth(R"({"a":"[[[[{{{{\"]]"})", 64) == 1);
  CHECK(json_depth("", 64) == 0);
  CHECK(json_depth(std::string(1000000, '['), 64) == 65);  // stops counting past the limit
}

TEST_CASE("deep, large or broken JSON is refused with a reason", "[json][safety]") {
  std::string why;
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(parse_json(deep, {}, &why).is_discarded());
  CHECK(why == "JSON nested deeper than 64 levels");
  CHECK(parse_json(std::string(200, ' ') + "{}", {100, 64}, &why).is_discarded());
  CHECK(why == "JSON of 202 bytes is over the limit of 100");
  CHECK(parse_json("{\"a\":", {}, &why).is_discarded());
  CHECK(why == "invalid JSON");
  auto ok = parse_json(R"({"a":[[[[1]]]]})");
  REQUIRE_FALSE(ok.is_discarded());
  CHECK(ok["a"][0][0][0][0] == 1);
}
