// SPDX-License-Identifier: Apache-2.0
// What a browser may send the management API (request_guard.hpp): the requests another site
// can make an operator's browser send, refused; the console's own and non-browser clients' taken.
#include <catch2/catch.hpp>

#include <dstackvmm/server/request_guard.hpp>

using namespace dstackvmm;

namespace {
RequestGuard tcp_guard(std::vector<std::string> names = {}) { return RequestGuard(*parse_listen_address("127.0.0.1", 8080), names); }
GuardRequest post(std::string_view content_type, bool reads_only = false) {
  GuardRequest r;
  r.method = "POST";
  r.path = "/prpc/CreateVm";
  r.host = "127.0.0.1:8080";
  r.content_type = content_type;
  r.rpc = true;
  r.reads_only = reads_only;
  return r;
}
}  // namespace

TEST_CASE("mutating methods only as JSON or protobuf POSTs; reads as anything", "[guard]") {
  auto g = tcp_guard();
  CHECK(g.check(post("application/json")).allowed());
  CHECK(g.check(post("application/json; charset=utf-8")).allowed());
  CHECK(g.check(post("application/octet-stream")).allowed());  // upstream's console (protobuf)
  for (const char* simple : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""}) {
    INFO(simple);
    auto v = g.check(post(simple));
    CHECK(v.status == 415);
  }
  CHECK(g.check(post("text/plain", true)).allowed());  // a listing changes nothing
  auto get = post("");
  get.method = "GET";
  get.path = "/prpc/RemoveVm";
  CHECK(g.check(get).status == 405);  // an <img src> to it does nothing
  get.reads_only = true;
  CHECK(g.check(get).allowed());
}

TEST_CASE("Host must name the daemon: DNS rebinding is refused", "[guard]") {
  auto g = tcp_guard({"vmm.example.org"});
  auto r = post("application/json", true);
  for (const char* ok : {"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "10.1.2.3", "vmm.example.org", "VMM.example.org:443"}) {
    INFO(ok);
    r.host = ok;
    CHECK(g.check(r).allowed());
  }
  for (const char* bad : {"attacker.example:8080", "", "localhost.attacker.example", "vmm.example.org.evil"}) {
    INFO(bad);
    r.host = bad;
    CHECK(g.check(r).status == 403);
  }
}

TEST_CASE("a browser's Origin must be the daemon's own, and cross-site fetches only navigate to the console", "[guard]") {
  auto g = tcp_guard({"vmm.example.org"});
  auto r = post("application/json");
  r.origin = "http://127.0.0.1:8080";
  CHECK(g.check(r).allowed());
  for (const char* bad : {"http://attacker.example", "null", "http://127.0.0.1:9999", "file://"}) {
    INFO(bad);
    r.origin = bad;
    CHECK(g.check(r).status == 403);
  }
  r.host = "vmm.example.org";  // behind a TLS proxy
  r.origin = "https://vmm.example.org";
  CHECK(g.check(r).allowed());
  r = post("application/json", true);
  r.sec_fetch_site = "cross-site";
  CHECK(g.check(r).status == 403);
  GuardRequest nav;
  nav.method = "GET";
  nav.path = "/";
  nav.host = "127.0.0.1:8080";
  nav.sec_fetch_site = "cross-site";
  nav.sec_fetch_mode = "navigate";
  CHECK(g.check(nav).allowed());  // a link to the console
  nav.path = "/logs";
  CHECK(g.check(nav).status == 403);
  nav.path = "/";
  nav.sec_fetch_mode = "no-cors";
  CHECK(g.check(nav).status == 403);
}

TEST_CASE("a unix socket is out of a browser's reach: nothing is checked", "[guard]") {
  RequestGuard g(*parse_listen_address("unix:/run/vmm.sock", 0), {});
  auto r = post("text/plain");
  r.host = "anything";
  CHECK(g.check(r).allowed());
}
