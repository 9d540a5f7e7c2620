// SPDX-License-Identifier: Apache-2.0
// The host API guests call (/api/Info, /api/Notify, /api/GetSealingKey), served outside the
// engine as its client: one event loop owns the vsock listener and every user-net VM's unix
// socket, and a fixed pool of workers runs the calls. Which VMs to serve it learns from the
// manager's events; who is calling it learns from the channel (peer CID, or the socket the
// connection came in on), never from the request.
#pragma once

#include <cstddef>
#include <memory>

#include <dstackvmm/error.hpp>
#include <dstackvmm/export.hpp>
#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::server {

struct HostApiServerOptions {
  size_t workers = 4;             // threads running calls (a GetSealingKey may wait on the key provider)
  size_t max_connections = 1024;  // past this, new connections are closed at once
  size_t max_per_vm = 16;         // one VM's share; past it the VM's oldest idle connection goes
};

// Thread count is 1 + workers, whatever the number of VMs and connections. Thread-safe to
// destroy from any thread but the loop's; stops serving before the destructor returns.
class DSTACKVMM_EXPORT HostApiServer {
 public:
  // On the vsock channel, a vsock listener that cannot be opened is logged, not fatal (the
  // guests then cannot report boot progress; everything else works).
  static Result<std::unique_ptr<HostApiServer>> start(VmManager& vmm, HostApiServerOptions options = {});
  ~HostApiServer();
  HostApiServer(const HostApiServer&) = delete;
  HostApiServer& operator=(const HostApiServer&) = delete;

  size_t connections() const;  // open guest connections now
  size_t listeners() const;    // per-VM sockets listening now (user-net channel)

 private:
  struct DSTACKVMM_HIDDEN Impl;
  explicit HostApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm::server
