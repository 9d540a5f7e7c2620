// SPDX-License-Identifier: Apache-2.0
#include "rpc/status_cache.hpp"

#include <algorithm>

#include "wire/json_codec.hpp"

namespace dstackvmm::rpc {

std::string StatusCache::brief_reply(const VmPage& page, bool port_mapping_enabled, bool every_vm) {
  // As nlohmann::json prints the object: keys sorted, no spaces.
  std::string out = std::string("{\"port_mapping_enabled\":") + (port_mapping_enabled ? "true" : "false") +
                    ",\"total\":" + std::to_string(page.total) + ",\"vms\":[";
  std::lock_guard lock(mu_);
  bool whole = every_vm && page.vms.size() == page.total;  // what is not in it was removed
  std::map<std::string, Entry> seen;
  for (size_t i = 0; i < page.vms.size(); ++i) {
    const VmInfo& vm = page.vms[i];
    auto it = entries_.find(vm.id);
    if (it == entries_.end() || !(it->second.info == vm)) {
      std::string text = wire::encode_vm_info(vm, true).dump(-1, ' ', false, wire::json::error_handler_t::replace);
      ++encoded_;
      it = entries_.insert_or_assign(vm.id, Entry{vm, std::move(text)}).first;
    }
    if (i) out += ',';
    out += it->second.text;
    if (whole) seen.insert(entries_.extract(it));
  }
  if (whole) entries_ = std::move(seen);
  // Pages of a table that shrank can leave entries behind: bounded by forgetting them all.
  if (entries_.size() > std::max<size_t>(256, 2 * static_cast<size_t>(page.total))) entries_.clear();
  out += "]}";
  return out;
}

size_t StatusCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

uint64_t StatusCache::encoded() const {
  std::lock_guard lock(mu_);
  return encoded_;
}

}  // namespace dstackvmm::rpc
