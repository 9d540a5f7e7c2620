// SPDX-License-Identifier: Apache-2.0
// Who may hold one of the management API's connections. cpp-httplib gives each connection a
// thread for its whole life, so connections that never send a request, or send nothing but
// unauthenticated ones, would otherwise keep credentialed callers out. At accept time (before
// any byte is read) a connection is refused when its peer address holds kMaxPerPeer already or
// the daemon holds kMaxConnections; every admitted one gets a thread at once (TaskPool is sized
// to the cap), waits at most head_limit's deadline for its request head, and is closed after an
// unauthenticated request (server.cpp). Refused connections get "503" and are closed.
#pragma once

#include <cstddef>
#include <string>

namespace dstackvmm::daemon::admission {

constexpr size_t kMaxConnections = 512;
constexpr size_t kMaxPerPeer = 64;

struct Connection {
  std::string peer;  // "" in builds without the accept hook
  int fd = -1;
};
// The connection this thread accepted last: cpp-httplib accepts and hands the socket to its
// task queue on one thread.
Connection take_accepted();
// The connection of `peer` has ended.
void release(const std::string& peer);
// The connection this thread now serves (TaskPool sets it around each connection's job).
void set_current(const Connection& c);
// The request this thread answers ends its connection once the answer is written: cpp-httplib
// 0.11 keeps a connection open whatever the response's Connection header says, so the
// socket is shut down after the write (after_response, from the server's logger).
void close_after_response();
void after_response();
size_t open_connections();
// False in builds where the accept hook is not in place (sanitizers intercept accept too).
bool active();

}  // namespace dstackvmm::daemon::admission
