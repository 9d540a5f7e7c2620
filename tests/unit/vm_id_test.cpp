// SPDX-License-Identifier: Apache-2.0
// VM ids: upstream's valid and invalid vectors.
#include <catch2/catch.hpp>

#include <dstackvmm/vm_id.hpp>

using namespace dstackvmm;

TEST_CASE("VM ids are checked before they touch a path", "[id]") {
  for (std::string ok : {std::string("3f2504e0-4f89-41d3-9a0c-0305e82c3301"), std::string("vm_1-A"), std::string(64, 'a')})
    CHECK(validate_vm_id(ok).ok());
  for (std::string bad : {std::string(""), std::string(".."), std::string("../../etc"), std::string("/etc/passwd"),
                          std::string("a/b"), std::string("a\\b"), std::string("vm id"), std::string("."),
                          std::string("\0", 1), std::string("café"), std::string(65, 'a')}) {
    INFO(bad);
    auto s = validate_vm_id(bad);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == ErrorCode::kInvalidArgument);
    CHECK(s.error().message.rfind("invalid VM id: '", 0) == 0);
  }
  CHECK(validate_vm_id("../x").error().message == "invalid VM id: '../x'");
}

TEST_CASE("new VM ids are UUID v4 and valid", "[id]") {
  std::string a = new_vm_id(), b = new_vm_id();
  CHECK(a != b);
  CHECK(a.size() == 36);
  CHECK(a[14] == '4');
  CHECK(validate_vm_id(a).ok());
}
