// SPDX-License-Identifier: Apache-2.0
// The guest-facing HTTP reader, one test per bound: what a hostile guest sends over its
// host-API channel is refused with a status, never read without limit, never a crash.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "guest/guest_http.hpp"

using namespace dstackvmm::internal;
using namespace std::chrono_literals;

namespace {

struct Result {
  std::string reply;
  std::vector<std::string> seen;  // "method body" per request handled
};

// Sends `input`, closes the sending side, and returns everything the server answered.
Result exchange(const std::string& input, bool persistent, GuestHttpLimits limits = {}) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  Result r;
  std::thread server([&] {
    serve_guest_api(fds[1], [&](const std::string& m, const std::string& b) {
      r.seen.push_back(m + " " + b);
      return std::pair{200, std::string("null")};
    }, persistent, -1, limits);
    ::close(fds[1]);
  });
  std::thread writer([&] {
    size_t done = 0;
    while (done < input.size()) {
      ssize_t n = ::send(fds[0], input.data() + done, input.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed: it refused what it saw
      done += static_cast<size_t>(n);
    }
    ::shutdown(fds[0], SHUT_WR);
  });
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.reply.append(buf, static_cast<size_t>(n));
  writer.join();
  server.join();
  ::close(fds[0]);
  return r;
}

std::string post(const std::string& method, const std::string& body, const std::string& extra = "") {
  return "POST /api/" + method + "?json HTTP/1.1\r\nHost: g\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("a persistent stream serves requests one after another", "[guest-http]") {
  auto r = exchange(post("Notify", "{\"a\":1}") + post("Info", "") + post("Notify", "x", "Connection: close\r\n"), true);
  REQUIRE(r.seen == std::vector<std::string>{"Notify {\"a\":1}", "Info ", "Notify x"});
  // Connection: close from one guest connection does not end QEMU's shared stream.
  CHECK(r.reply.find("Connection: close") == std::string::npos);
}

TEST_CASE("garbage ends the stream after a 400, and nothing after it is handled", "[guest-http][safety]") {
  auto r = exchange("GARBAGE\r\n\r\n" + post("Notify", "late"), true);
  CHECK(r.reply.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(r.seen.empty());
}

TEST_CASE("every bound of a request is enforced", "[guest-http][safety]") {
  GuestHttpLimits l;
  l.max_head = 1024;
  l.max_headers = 8;
  l.max_body = 100;
  auto status = [&](const std::string& in) { return exchange(in, true, l).reply.substr(0, 12); };
  CHECK(status("POST /api/Notify HTTP/1.1\r\nX: " + std::string(5000, 'a') + "\r\n\r\n") == "HTTP/1.1 431");
  std::string many;
  for (int i = 0; i < 20; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  CHECK(status("POST /api/Notify HTTP/1.1\r\n" + many + "\r\n") == "HTTP/1.1 431");
  CHECK(status(post("Notify", std::string(101, 'x'))) == "HTTP/1.1 413");
  CHECK(status("POST /api/Notify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n") == "HTTP/1.1 501");
  CHECK(status(post("Notify", "xx", "Content-Encoding: gzip\r\n")) == "HTTP/1.1 415");
  CHECK(status("POST /api/Notify HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab") == "HTTP/1.1 400");
  CHECK(status("POST /api/Notify HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == "HTTP/1.1 400");
  CHECK(status("POST /api/Notify HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") == "HTTP/1.1 400");
  CHECK(status("POST /prpc/Status HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == "HTTP/1.1 404");
}

TEST_CASE("a stalled request is cut off at its deadline", "[guest-http][safety]") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  GuestHttpLimits l;
  l.request_time = 200ms;
  std::string half = "POST /api/Notify HTTP/1.1\r\nContent-Length: 50\r\n\r\nonly part";
  REQUIRE(::write(fds[0], half.data(), half.size()) == static_cast<ssize_t>(half.size()));
  auto start = std::chrono::steady_clock::now();
  std::string buf;
  auto r = read_guest_request(fds[1], buf, l, -1, std::chrono::steady_clock::now() + 1s);
  CHECK(r.outcome == GuestHttpRead::Outcome::kBad);
  CHECK(r.status == 408);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  ::close(fds[0]);
  ::close(fds[1]);
}
