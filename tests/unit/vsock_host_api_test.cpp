// SPDX-License-Identifier: Apache-2.0
// The vsock host API's per-connection HTTP handling, over a socketpair (this machine has no
// vsock; the accept loop only adds the peer-CID lookup).
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "vsock_host_api.hpp"

using namespace dstackvmm::internal;

namespace {

std::string exchange(const std::string& request, std::string* seen = nullptr) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  HostApiHandler handler = [seen](const std::string& vm, const std::string& method, const std::string& body) {
    if (seen) *seen = vm + " " + method + " " + body;
    return std::pair{200, std::string("null")};
  };
  std::thread server([&] { serve_host_api_connection(fds[1], "vm-7", handler); ::close(fds[1]); });
  REQUIRE(::write(fds[0], request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  ::shutdown(fds[0], SHUT_WR);  // a peer that has sent all it will send
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  server.join();
  ::close(fds[0]);
  return reply;
}

}  // namespace

TEST_CASE("a host API request is answered for the VM the connection belongs to", "[host-api][vsock]") {
  std::string seen;
  std::string body = R"({"event":"boot.progress","payload":"done"})";
  auto reply = exchange("POST /api/Notify?json HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body,
                        &seen);
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.find("Content-Length: 4\r\n") != std::string::npos);
  CHECK(reply.substr(reply.size() - 4) == "null");
  CHECK(seen == "vm-7 Notify " + body);  // the id comes from the connection, not the request
}

TEST_CASE("bad host API requests are refused", "[host-api][vsock]") {
  CHECK(exchange("GET /prpc/Status HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
  CHECK(exchange("POST /api/a/b HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
  CHECK(exchange("garbage\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(exchange("POST /api/Notify HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").find("payload too large") != std::string::npos);
  CHECK(exchange("POST /api/Notify HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort").empty());  // peer closed early
}

TEST_CASE("host API vsock addresses parse as upstream", "[host-api][vsock]") {
  CHECK(parse_vsock_cid("vsock:2") == 2u);
  CHECK(parse_vsock_cid("vsock:0x10") == 16u);
  CHECK_FALSE(parse_vsock_cid("vsock:not-a-cid"));
  CHECK_FALSE(parse_vsock_cid("tcp:2"));
}
