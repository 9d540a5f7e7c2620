// SPDX-License-Identifier: Apache-2.0
// The host-wide CID registry: one JSON file, guarded by an flock on a file beside it, shared
// by every daemon and one-shot run on the host, so no two VMs anywhere are handed one CID.
//
// An entry names its owner (a manager's run_path), the VM and the processes that hold it: the
// manager that reserved it, and the VM's QEMU once launched. An entry none of whose processes
// still exists (pid and start time both match) is free to take: a stopped VM of a daemon that
// is gone gives up its CID; a running guest whose daemon died keeps it while its QEMU lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>
#include <optional>
#include <string>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

struct CidRegistryCache;

class CidRegistry {
 public:
  // `owner` identifies this manager across restarts (its canonical run_path). CIDs come from
  // [start, start + size).
  CidRegistry(std::filesystem::path file, std::string owner, uint32_t start, uint32_t size,
              std::filesystem::path proc_root = "/proc");
  ~CidRegistry();

  // `want` for this VM, or (none wanted) the lowest CID of the range no live entry holds and
  // `taken_here` does not exclude. An entry of this owner and VM is renewed. kAlreadyExists
  // when `want` is held by another VM that lives, naming its owner; kResourceExhausted when
  // the range is full; kIo when the registry cannot be read or written.
  Result<uint32_t> reserve(const std::string& vm, std::optional<uint32_t> want,
                           const std::function<bool(uint32_t)>& taken_here = {});
  // reserve(vm, cid) for many VMs under one lock and one write (a manager opening with its
  // VMs): the VMs whose CID another VM holds, with the error reserve() would give.
  std::map<std::string, Error> reserve_all(const std::vector<std::pair<std::string, uint32_t>>& vms);
  // The VM's QEMU (pid) now holds the CID too, so it stays held if this manager goes.
  Status add_holder(uint32_t cid, const std::string& vm, int pid);
  // Forgets the entry when it is this owner's and VM's.
  void release(uint32_t cid, const std::string& vm);
  // Several releases in one change of the file (a burst of removals rewrites it once).
  void release_all(const std::vector<std::pair<uint32_t, std::string>>& cids);

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::string owner_;
  uint64_t start_, end_;
  std::filesystem::path proc_;
  std::unique_ptr<CidRegistryCache> cache_;  // the document as last seen (cid_registry.cpp)
};

}  // namespace dstackvmm::internal
