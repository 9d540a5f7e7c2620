// SPDX-License-Identifier: Apache-2.0
// QmpClient against replayed transcripts: replies, interleaved events, errors, and peers that
// are silent, closed or not QMP at all (errors, never hangs).
#include <catch2/catch.hpp>

#include <dstackvmm/qmp_client.hpp>

#include "../support/fake_qmp_server.hpp"
#include "../support/temp_dir.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;

namespace {
const std::vector<std::string> kCapsOk{R"({"return": {}})"};
}

TEST_CASE("QmpClient negotiates, queries status and keeps interleaved events", "[qmp]") {
  TempDir dir("qmp");
  auto sock = dir.path() / "qmp.sock";
  FakeQmpServer server(sock, kQmpGreeting,
                       {kCapsOk,
                        {R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"})",
                         R"({"return": {"status": "running", "singlestep": false, "running": true}})"},
                        {R"({"return": {}})", R"({"event": "POWERDOWN", "timestamp": {"seconds": 3, "microseconds": 0}})"}});
  auto c = QmpClient::connect(sock, 2000ms);
  INFO((c.ok() ? "" : c.error().message));
  REQUIRE(c.ok());
  CHECK((*c)->qemu_version() == "7.2.22");
  auto st = (*c)->query_status();
  REQUIRE(st.ok());
  CHECK(st->status == "running");
  CHECK(st->running);
  REQUIRE((*c)->events().size() == 1);
  CHECK((*c)->events()[0].name == "RESUME");
  REQUIRE((*c)->system_powerdown().ok());
  auto ev = (*c)->wait_event("POWERDOWN", 2000ms);
  REQUIRE(ev.ok());
  CHECK(ev->name == "POWERDOWN");
  REQUIRE(server.received.size() == 3);
  CHECK(server.received[0] == R"({"execute":"qmp_capabilities"})");
  CHECK(server.received[1] == R"({"execute":"query-status"})");
  CHECK(server.received[2] == R"({"execute":"system_powerdown"})");
}

TEST_CASE("QMP error replies name the command and QEMU's description", "[qmp]") {
  TempDir dir("qmp");
  auto sock = dir.path() / "qmp.sock";
  FakeQmpServer server(sock, kQmpGreeting,
                       {kCapsOk, {R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})"}});
  auto c = QmpClient::connect(sock, 2000ms);
  REQUIRE(c.ok());
  auto r = (*c)->execute("nope", R"({"x":1})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kQemu);
  CHECK(r.error().message == "QMP nope failed: The command nope has not been found");
  CHECK(server.received[1] == R"({"arguments":{"x":1},"execute":"nope"})");
  CHECK((*c)->execute("x", "[1]").error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("a silent QMP peer times out instead of hanging", "[qmp]") {
  TempDir dir("qmp");
  auto sock = dir.path() / "qmp.sock";
  FakeQmpServer server(sock, kQmpGreeting, {kCapsOk, {""}}, /*hold_open=*/true);
  auto c = QmpClient::connect(sock, 2000ms);
  REQUIRE(c.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto st = (*c)->query_status(300ms);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ErrorCode::kUnavailable);
  CHECK(st.error().message == "QMP query-status: QMP peer did not answer in time");
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("a QMP peer that closes or speaks garbage is an error", "[qmp]") {
  TempDir dir("qmp");
  auto sock = dir.path() / "qmp.sock";
  {
    FakeQmpServer closing(sock, kQmpGreeting, {kCapsOk});  // closes after negotiation
    auto c = QmpClient::connect(sock, 2000ms);
    REQUIRE(c.ok());
    auto st = (*c)->query_status(2000ms);
    REQUIRE_FALSE(st.ok());
    // Depending on timing the send or the read sees the close first.
    CHECK(st.error().message.rfind("QMP query-status: QMP connection closed", 0) == 0);
    CHECK(st.error().code == ErrorCode::kUnavailable);
  }
  {
    FakeQmpServer garbage(sock, "hello, I am not QEMU", {});
    auto c = QmpClient::connect(sock, 2000ms);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == ErrorCode::kQemu);
    CHECK(c.error().message == "not a QMP greeting: hello, I am not QEMU");
  }
  {
    FakeQmpServer malformed(sock, kQmpGreeting, {kCapsOk, {"{not json"}});
    auto c = QmpClient::connect(sock, 2000ms);
    REQUIRE(c.ok());
    CHECK((*c)->query_status(2000ms).error().message == "malformed QMP message: {not json");
  }
  auto none = QmpClient::connect(dir.path() / "absent.sock", 200ms);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kUnavailable);
}
