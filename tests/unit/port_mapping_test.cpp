// SPDX-License-Identifier: Apache-2.0
// Port mappings: config rules and conflicts, with upstream's messages.
#include <catch2/catch.hpp>

#include <dstackvmm/port_mapping.hpp>

using namespace dstackvmm;

namespace {
PortMappingConfig enabled() {
  PortMappingConfig c;
  c.enabled = true;
  c.range = {{"tcp", 1, 20000}, {"udp", 5000, 5001}};
  return c;
}
std::string validate(PortMappingConfig c, std::vector<PortMapping> m) {
  auto s = validate_port_mappings(c, m);
  return s.ok() ? "" : s.error().message;
}
}  // namespace

TEST_CASE("port mappings are checked against [cvm.port_mapping]", "[ports]") {
  CHECK(validate(PortMappingConfig{}, {{"tcp", "", 8080, 80}}) == "Port mapping is disabled");
  CHECK(validate(PortMappingConfig{}, {}) == "");
  CHECK(validate(enabled(), {{"sctp", "", 8080, 80}}) == "Invalid protocol: sctp");
  CHECK(validate(enabled(), {{"tcp", "", 70000, 80}}) == "Invalid host port");
  CHECK(validate(enabled(), {{"tcp", "", 8080, 0}}) == "Invalid vm port");
  CHECK(validate(enabled(), {{"tcp", "nope", 8080, 80}}) == "Invalid host address");
  CHECK(validate(enabled(), {{"tcp", "", 30000, 80}}) == "Port mapping is not allowed for tcp:30000");
  CHECK(validate(enabled(), {{"udp", "", 8080, 80}}) == "Port mapping is not allowed for udp:8080");
  CHECK(validate(enabled(), {{"udp", "0.0.0.0", 5001, 53}}) == "");
}

TEST_CASE("an empty host address takes the configured default", "[ports]") {
  std::vector<PortMapping> m{{"tcp", "", 8080, 80}};
  auto c = enabled();
  c.address = "10.1.2.3";
  REQUIRE(validate_port_mappings(c, m).ok());
  CHECK(m[0].address == "10.1.2.3");
}

TEST_CASE("PortMapper refuses conflicts within a request and across VMs", "[ports]") {
  PortMapper pm;
  std::vector<PortMapping> dup{{"tcp", "127.0.0.1", 8080, 80}, {"tcp", "0.0.0.0", 8080, 81}};
  CHECK(pm.check("a", dup).error().message == "duplicate host port mapping: tcp 0.0.0.0:8080");

  REQUIRE(pm.reserve("a", {{"tcp", "127.0.0.1", 8080, 80}}).ok());
  CHECK(pm.check("b", {{"tcp", "0.0.0.0", 8080, 80}}).error().message ==
        "host port mapping conflicts with VM a: tcp 0.0.0.0:8080");
  CHECK(pm.check("b", {{"tcp", "127.0.0.1", 8080, 80}}).error().code == ErrorCode::kAlreadyExists);
  CHECK(pm.check("b", {{"tcp", "127.0.0.2", 8080, 80}}).ok());  // other address
  CHECK(pm.check("b", {{"udp", "127.0.0.1", 8080, 80}}).ok());  // other protocol
  CHECK(pm.check("a", {{"tcp", "127.0.0.1", 8080, 80}}).ok());  // its own mapping
  pm.release("a");
  CHECK(pm.check("b", {{"tcp", "0.0.0.0", 8080, 80}}).ok());
}
