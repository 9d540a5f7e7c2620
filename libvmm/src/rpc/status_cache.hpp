// SPDX-License-Identifier: Apache-2.0
// Status replies at scale: each VM's JSON is encoded once and reused while the VM keeps its
// revision (VmInfo::revision, a new one at every change the engine makes), and the engine is
// told which revisions are held (VmQuery::known), so a listing of a thousand VMs that did not
// change neither describes nor encodes any of them: it is a concatenation. Uptime and
// exited_at, which move every second, are spliced into the kept text.
// A query asked again while the listing stands where it did (VmQuery::unless_changed_since)
// gets the reply it got last time, with no VM looked at.
// The reply is byte for byte what the tree encoder gives (keys in the same order).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::rpc {

class StatusCache {
 public:
  // At most `max_bytes` of encoded VMs are kept (full entries hold each VM's compose file
  // twice: as given and escaped); a VM past it is encoded for the reply and not kept.
  explicit StatusCache(size_t max_bytes = 16 << 20) : max_bytes_(max_bytes) {}
  // The JSON text of a StatusResponse for `query` (its `known` is the cache's): brief when the
  // query asks for no configuration (configuration null), else full. `every_vm`: the query
  // has no filter and no paging, so entries of VMs not in its answer can go.
  std::string reply(const VmManager& vmm, VmQuery query, bool port_mapping_enabled, bool every_vm);
  size_t size() const;       // entries kept, brief and full
  size_t bytes() const;      // what they hold, as counted against max_bytes
  uint64_t encoded() const;  // VMs encoded since construction (the misses), for tests
  uint64_t replayed() const;  // replies sent again whole, the listing unchanged, for tests
  // VmInfo::revision is the manager's: a cache serves one manager.

 private:
  struct Entry {
    uint64_t revision = 0;  // the VM's when encoded
    // The text around the two spliced values: head "exited_at" middle "uptime" tail.
    std::string head, middle, tail;
    uint64_t round = 0;  // the last reply that used it
    size_t bytes = 0;    // counted against max_bytes_
  };
  using Entries = std::unordered_map<std::string, Entry>;
  static Entry encode(const VmInfo& info, bool brief);
  void forget(Entries& entries, Entries::iterator it);
  const size_t max_bytes_;
  size_t bytes_ = 0;
  mutable std::mutex mu_;
  Entries brief_, full_;
  // The last reply to each query (brief or full, ids, keyword, page) and where the listing
  // stood for it; a few queries are kept (a console, a script, a bench), more clears them.
  struct Last {
    ListingStamp stamp;
    std::string text;
  };
  std::unordered_map<std::string, Last> last_;
  uint64_t encoded_ = 0, replayed_ = 0;
  uint64_t round_ = 0;
};

}  // namespace dstackvmm::rpc
