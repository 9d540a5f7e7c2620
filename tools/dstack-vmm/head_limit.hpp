// SPDX-License-Identifier: Apache-2.0
// A cap on the bytes of one request head. cpp-httplib 0.11 (Debian 12) bounds each header
// line but not their number: one request with 3 million headers took the daemon to 300 MB
// before a handler ran. Its reads are counted here, per worker thread, from the start of a
// head until the pre-routing handler sees it complete; past the cap the read fails and the
// connection is closed. The same count bounds the time a head may take, so a client that
// trickles one header line at a time (each within the 10 s read timeout) cannot hold a
// worker for ever.
#pragma once

#include <chrono>
#include <cstddef>

namespace dstackvmm::daemon::head_limit {

constexpr size_t kMaxHeadBytes = 64 * 1024;
// From the start of a head (or the end of the previous response, keep-alive idle included)
// to its last byte.
constexpr std::chrono::seconds kMaxHeadTime{15};

// This thread is about to read a request head (a new connection, or the next request on a
// kept-alive one).
void begin_head();
// The head is in; the body is bounded elsewhere (Content-Length cap, no chunked bodies).
void end_head();
// False in builds where the count is not in place (sanitizers intercept the same call).
bool active();

}  // namespace dstackvmm::daemon::head_limit
