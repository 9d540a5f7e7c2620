// SPDX-License-Identifier: Apache-2.0
// The `address` + `port` forms upstream and we accept.
#include <catch2/catch.hpp>

#include <dstackvmm/listen_address.hpp>

using namespace dstackvmm;

TEST_CASE("listen addresses in every accepted form", "[listen]") {
  auto unix_ = parse_listen_address("unix:/run/vmm.sock", 0);
  REQUIRE(unix_.ok());
  CHECK(unix_->kind == ListenAddress::Kind::kUnix);
  CHECK(unix_->path == "/run/vmm.sock");
  CHECK(unix_->url() == "unix:/run/vmm.sock");

  auto ip = parse_listen_address("127.0.0.1", 8080);
  REQUIRE(ip.ok());
  CHECK(ip->host == "127.0.0.1");
  CHECK(ip->port == 8080);
  CHECK(ip->url() == "http://127.0.0.1:8080");

  auto hp = parse_listen_address("0.0.0.0:9000", 8000);
  REQUIRE(hp.ok());
  CHECK(hp->port == 9000);

  auto v6 = parse_listen_address("[::1]:9000", 0);
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "[::1]:9000");

  auto bare_v6 = parse_listen_address("::", 12000);
  REQUIRE(bare_v6.ok());
  CHECK(bare_v6->port == 12000);

  auto name = parse_listen_address("localhost:8080", 0);
  REQUIRE(name.ok());
  CHECK(name->host == "localhost");
}

TEST_CASE("bad listen addresses name the problem", "[listen]") {
  CHECK(parse_listen_address("unix:", 0).error().message ==
        "'unix:' names no socket path (expected unix:PATH, an IP address with `port`, or HOST:PORT)");
  CHECK(parse_listen_address("unix:/" + std::string(200, 'a'), 0).error().message.find("107 bytes") != std::string::npos);
  CHECK(parse_listen_address("1.2.3.4:0", 0).error().message == "invalid port '0' in '1.2.3.4:0'");
  CHECK(parse_listen_address("host name:80", 0).error().message.find("is not a valid address") != std::string::npos);
  CHECK_FALSE(parse_listen_address("[::1]9000", 0).ok());
}
