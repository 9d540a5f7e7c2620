// SPDX-License-Identifier: Apache-2.0
// Running a short helper (qemu-img) and reporting its output when it fails.
#pragma once

#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// Runs `argv` and waits for it, at most `timeout`: past it the helper is killed and the call
// fails with kQemu "<what>: <prog> did not finish within N s". A failure names `what` and
// the helper's own output (first 4 KiB).
Status run_command(const std::vector<std::string>& argv, const std::string& what,
                   std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The same, returning what the helper printed on stdout (first 64 KiB) when it exits 0.
// A stop request kills the helper at once, as the deadline does.
Result<std::string> run_command_output(const std::vector<std::string>& argv, const std::string& what,
                                       std::chrono::milliseconds timeout, std::stop_token stop = {});

// What a helper printed, and how it ended.
struct CommandOutput {
  int wait_status = 0;  // raw; see WIFEXITED
  std::string out, err;  // the first 64 KiB of each
};
// Runs `argv` with `input` as its stdin (then end of file), at most `timeout` (then killed:
// kQemu "<what>: <prog> did not finish within N s"). A program that cannot start is kQemu too.
Result<CommandOutput> run_command_io(const std::vector<std::string>& argv, const std::string& input, const std::string& what,
                                     std::chrono::milliseconds timeout, std::stop_token stop = {});

}  // namespace dstackvmm::internal
