// SPDX-License-Identifier: Apache-2.0
// The umbrella header compiles alone and leaks no third-party headers.
#include <dstackvmm/dstackvmm.hpp>

#include <catch2/catch.hpp>

#ifdef TOML_VERSION_MAJOR
#error "public headers must not include toml++"
#endif
#ifdef NLOHMANN_JSON_VERSION_MAJOR
#error "public headers must not include nlohmann/json"
#endif
#ifdef CPPHTTPLIB_VERSION
#error "public headers must not include cpp-httplib"
#endif

TEST_CASE("the umbrella header is self-contained", "[api]") {
  dstackvmm::Result<int> r = 3;
  CHECK(r.ok());
  dstackvmm::Status s = dstackvmm::make_error(dstackvmm::ErrorCode::kNotFound, "x");
  CHECK(s.error().code == dstackvmm::ErrorCode::kNotFound);
  CHECK(dstackvmm::error_code_name(s.error().code) == "not_found");
}
