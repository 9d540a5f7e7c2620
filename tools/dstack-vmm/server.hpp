// SPDX-License-Identifier: Apache-2.0
// The daemon's HTTP transport: listening, routes, shutdown. No VM logic lives here.
#pragma once

#include <memory>
#include <string>

#include <dstackvmm/server/auth.hpp>
#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/listen_address.hpp>
#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::daemon {

class Server {
 public:
  // Borrows `vmm`, which must outlive the server.
  Server(const Config& config, VmManager& vmm, Authenticator auth);
  ~Server();

  // Binds the configured address; the server then serves in run().
  Status bind();
  // Serves until stop(); removes a unix socket on the way out.
  Status run();
  // Safe from any thread, including a signal-waiting one.
  void stop();

  const ListenAddress& address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm::daemon
