// SPDX-License-Identifier: Apache-2.0
// /logs helpers: channels, tails and ANSI stripping.
#include <catch2/catch.hpp>

#include <dstackvmm/vm_logs.hpp>

using namespace dstackvmm;

TEST_CASE("log channels map to upstream's files", "[logs]") {
  CHECK(log_file_name("") == "serial.log");
  CHECK(log_file_name("serial") == "serial.log");
  CHECK(log_file_name("stdout") == "stdout.log");
  CHECK(log_file_name("stderr") == "stderr.log");
  CHECK(log_file_name("qmp").empty());
}

TEST_CASE("tail_lines keeps the last lines", "[logs]") {
  CHECK(tail_lines("a\nb\nc\n", 2) == "b\nc\n");
  CHECK(tail_lines("a\nb\nc", 2) == "b\nc");
  CHECK(tail_lines("a\nb\n", 10) == "a\nb\n");
  CHECK(tail_lines("a\nb\n", 0).empty());
  CHECK(tail_lines("", 3).empty());
}

TEST_CASE("strip_ansi removes CSI and OSC sequences only", "[logs]") {
  CHECK(strip_ansi("\x1b[1;32mok\x1b[0m done") == "ok done");
  CHECK(strip_ansi("\x1b]0;title\x07text") == "text");
  CHECK(strip_ansi("plain [brackets]") == "plain [brackets]");
}
