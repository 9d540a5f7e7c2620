// SPDX-License-Identifier: Apache-2.0
// Claiming a unix socket path for a server: replace a stale socket, never a live one.
#pragma once


#include <filesystem>
#include <functional>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Makes `path` free to bind. Creates the parent folder. If a socket file is there and a
// server answers on it: kAlreadyExists. If nothing answers: removed when `reuse`, else
// kAlreadyExists telling the user about `reuse`. A non-socket file is never removed.
Status claim_unix_socket_path(const std::filesystem::path& path, bool reuse);

// True when something listens on the unix socket at `path`, busy or not: a listener whose
// backlog is full (connect says EAGAIN) is live, only a refused or missing one is not.
bool unix_socket_is_live(const std::filesystem::path& path);

// cpp-httplib listens with a backlog of 5; on a unix socket a burst beyond it is refused at
// once (a thousand removals made hundreds of calls fail). Give options() to the server's
// set_socket_options before binding, and call widen() once bound.
class ListenBacklog {
 public:
  std::function<void(int)> options();
  void widen(int backlog = 4096);

 private:
  int fd_ = -1;
};

}  // namespace dstackvmm
