// SPDX-License-Identifier: Apache-2.0
// VmmClient against small servers on loopback: what it sends, how answers and failures map to
// error codes, and that a hostile or stalled peer costs a bounded amount of memory and time.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dstackvmm/client/vmm_client.hpp>

#include "../support/loopback.hpp"
#include "../support/wait.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;
using namespace std::chrono_literals;

namespace {

// An httplib server on a free loopback port, stopped and joined at the end of the test.
struct Peer {
  httplib::Server http;
  int port = 0;
  std::thread thread;
  Peer() = default;
  void start() {
    port = http.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { http.listen_after_bind(); });
    REQUIRE(testing::wait_until([this] { return http.is_running(); }, 5s));
  }
  ~Peer() {
    http.stop();
    if (thread.joinable()) thread.join();
  }
  VmmClient client(ClientOptions o = {}) {
    o.url = "http://127.0.0.1:" + std::to_string(port);
    return *VmmClient::create(o);
  }
};

}  // namespace

TEST_CASE("calls are POST /prpc/<Method>?json with a JSON body and the credentials", "[client]") {
  Peer peer;
  std::string seen_path, seen_body, seen_auth;
  peer.http.Post("/prpc/StartVm", [&](const httplib::Request& req, httplib::Response& res) {
    seen_path = req.target;
    seen_body = req.body;
    seen_auth = req.get_header_value("Authorization");
    res.set_content("null", "application/json");
  });
  peer.http.Post("/prpc/UpdateVm", [&](const httplib::Request& req, httplib::Response& res) {
    seen_body = req.body;
    res.set_content(R"({"id":"abc"})", "application/json");
  });
  peer.start();
  auto c = peer.client({.token = "t0k"});
  REQUIRE(c.start_vm("vm-1").ok());
  CHECK(seen_path == "/prpc/StartVm?json");
  CHECK(nlohmann::json::parse(seen_body) == nlohmann::json{{"id", "vm-1"}});
  CHECK(seen_auth == "Bearer t0k");
  REQUIRE(peer.client({.auth_user = "u", .auth_password = "p"}).start_vm("x").ok());
  CHECK(seen_auth == "Basic dTpw");

  VmUpdate u{.id = "vm-1"};
  u.ports = std::vector<PortMapping>{{"tcp", "127.0.0.1", 8080, 80}};
  u.kms_urls = std::vector<std::string>{"https://kms:8000"};
  CHECK(*c.update_vm(u) == "abc");
  auto sent = nlohmann::json::parse(seen_body);
  CHECK(sent["update_ports"] == true);
  CHECK(sent["ports"][0]["host_port"] == 8080);
  CHECK(sent["update_kms_urls"] == true);  // upstream's test pins this pair
  CHECK_FALSE(sent.contains("compose_file"));
  CHECK_FALSE(sent.contains("update_gateway_urls"));
}

TEST_CASE("errors carry the daemon's code, or are classified when an upstream daemon sends none", "[client]") {
  Peer peer;
  peer.http.Post("/prpc/RemoveVm", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 400;
    if (req.body.find("ours") != std::string::npos) res.set_header("X-Error-Code", "failed_precondition");
    res.set_content("{\n  \"error\": \"Failed to remove VM: VM not found\"\n}", "application/json");
  });
  peer.http.Post("/prpc/StopVm", [](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content("{\n  \"error\": \"Failed to stop VM: something\"\n}", "application/json");
  });
  peer.http.Post("/prpc/Status", [](const httplib::Request&, httplib::Response& res) { res.status = 401; });
  peer.start();
  auto c = peer.client();
  auto upstream = c.remove_vm("x");
  CHECK(upstream.error().code == ErrorCode::kNotFound);
  CHECK(upstream.error().message == "Failed to remove VM: VM not found");
  CHECK(c.remove_vm("ours").error().code == ErrorCode::kFailedPrecondition);  // the header wins
  CHECK(c.stop_vm("x").error().code == ErrorCode::kFailedPrecondition);
  auto denied = c.status();
  CHECK(denied.error().code == ErrorCode::kUnauthenticated);
  CHECK(denied.error().message.find("--token") != std::string::npos);
}

TEST_CASE("an unreachable daemon is one line naming the URL and what to do", "[client]") {
  int fd = testing::listen_on_loopback(0);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // a port nothing listens on
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto r = VmmClient::create({.url = url})->version();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(r.error().message.find("cannot reach the daemon at " + url) == 0);
  CHECK(r.error().message.find('\n') == std::string::npos);
  auto unix_r = VmmClient::create({.url = "unix:/nonexistent/vmm.sock"})->version();
  CHECK(unix_r.error().message.find("no socket at /nonexistent/vmm.sock") != std::string::npos);

  for (const char* bad : {"ftp://x", "localhost:8080", "unix:", "http://h:1/prpc"}) {
    INFO(bad);
    CHECK(VmmClient::create({.url = bad}).error().code == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("a daemon that answers without end, or not at all, costs a bounded reply and a deadline", "[client][attack]") {
  std::atomic<bool> done{false};  // before the peer: its handlers read it until the peer stops
  Peer peer;
  peer.http.Post("/prpc/Status", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      static const std::string block(64 * 1024, ' ');
      return !done && sink.write(block.data(), block.size());  // whitespace for ever
    });
  });
  peer.http.Post("/prpc/Version", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      testing::wait_until([&] { return done.load(); }, 10s);  // says nothing until the test ends
      sink.done();
      return true;
    });
  });
  peer.start();
  auto big = peer.client({.max_reply_bytes = 1u << 20}).status();
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().message.find("larger than 1 MiB") != std::string::npos);

  auto t0 = std::chrono::steady_clock::now();
  auto slow = peer.client({.timeout = 500ms}).version();
  auto took = std::chrono::steady_clock::now() - t0;
  done = true;
  REQUIRE_FALSE(slow.ok());
  CHECK(slow.error().code == ErrorCode::kUnavailable);
  CHECK(took < 5s);
}

TEST_CASE("logs stream to the sink as they come, and a sink can stop them", "[client]") {
  Peer peer;
  std::string query;
  peer.http.Get("/logs", [&](const httplib::Request& req, httplib::Response& res) {
    query = req.target;
    if (req.get_param_value("id") == "gone") {
      res.status = 404;
      res.set_content("VM not found", "text/plain");
      return;
    }
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      std::string line = "line " + std::to_string(offset / 7) + "\n";
      sink.write(line.data(), line.size());
      if (offset > 1000) sink.done();
      return true;
    });
  });
  peer.start();
  auto c = peer.client();
  std::string got;
  REQUIRE(c.logs({.id = "a b", .channel = "stderr", .lines = 5, .follow = true}, [&](std::string_view s) {
              got += s;
              return got.size() < 30;
            }).ok());
  CHECK(query == "/logs?id=a%20b&follow=true&ansi=false&lines=5&ch=stderr");
  CHECK(got.rfind("line 0\nline 1\n", 0) == 0);
  CHECK(got.size() < 100);
  auto gone = c.logs({.id = "gone"}, [](std::string_view) { return true; });
  CHECK(gone.error().code == ErrorCode::kNotFound);
}
