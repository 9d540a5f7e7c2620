// SPDX-License-Identifier: Apache-2.0
// Is a service's URL reachable? A TCP connect to its host and port with a deadline, for the
// host check (a reachable port says nothing of what answers there, which is all it claims).
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

namespace dstackvmm::internal {

// host and port of an http(s) URL; nullopt when it is not one.
std::optional<std::pair<std::string, std::string>> url_endpoint(const std::string& url);
// A TCP connect within the timeout: "" when it connected, else why not. A stop request ends
// the wait at once ("not tried (stopped)").
std::string try_connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout, std::stop_token stop);

}  // namespace dstackvmm::internal
