// SPDX-License-Identifier: Apache-2.0
#include "rpc/status_cache.hpp"

#include <algorithm>
#include <iterator>

#include "wire/json_codec.hpp"

namespace dstackvmm::rpc {

namespace {

std::string dump(const wire::json& j) { return j.dump(-1, ' ', false, wire::json::error_handler_t::replace); }

// A JSON string as nlohmann prints it; the durations are plain ASCII, the rest goes through it.
void append_string(std::string* out, const std::string& s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    *out += dump(wire::json(s));
    return;
  }
  *out += '"';
  *out += s;
  *out += '"';
}

// What makes two Status queries the same question: the fields status_query() fills.
std::string query_key(const VmQuery& q, bool port_mapping_enabled) {
  std::string key;
  key += q.with_configuration ? 'F' : 'B';
  key += q.with_files ? 'f' : '-';
  key += port_mapping_enabled ? 'p' : '-';
  key += std::to_string(q.page) + '/' + std::to_string(q.page_size) + '/';
  key += std::to_string(q.keyword.size()) + ':' + q.keyword;
  for (const auto& id : q.ids) key += '/' + std::to_string(id.size()) + ':' + id;
  return key;
}

// A few queries are asked again and again (a console, a script, a bench); each kept reply is
// at most a quarter of the budget, so they hold at most as much as the entries may.
constexpr size_t kLastReplies = 4;

}  // namespace

StatusCache::Entry StatusCache::encode(const VmInfo& info, bool brief) {
  Entry e;
  e.revision = info.revision;
  wire::json j = wire::encode_vm_info(info, brief);
  // Printed member by member, as dump() would (the object's keys are sorted), so that the
  // two moving values can be left out: exited_at sorts before uptime.
  std::string* part = &e.head;
  *part += '{';
  bool first = true;
  for (const auto& [key, value] : j.items()) {
    if (!first) *part += ',';
    first = false;
    *part += dump(wire::json(key));
    *part += ':';
    if (key == "exited_at") part = &e.middle;
    else if (key == "uptime") part = &e.tail;
    else *part += dump(value);
  }
  *part += '}';
  e.bytes = sizeof(Entry) + 64 + e.head.size() + e.middle.size() + e.tail.size();
  return e;
}

void StatusCache::forget(Entries& entries, Entries::iterator it) {
  bytes_ -= it->second.bytes;
  entries.erase(it);
}

std::string StatusCache::reply(const VmManager& vmm, VmQuery query, bool port_mapping_enabled, bool every_vm) {
  struct Part {
    const Entry* entry;
    std::string exited_at, uptime;
  };
  bool brief = !query.with_configuration;
  // Held across the query: an entry the engine was told of stays until the reply is made.
  std::lock_guard lock(mu_);
  std::string key = query_key(query, port_mapping_enabled);
  auto last = last_.find(key);
  if (last != last_.end()) query.unless_changed_since = last->second.stamp;
  Entries& entries = brief ? brief_ : full_;
  // What the engine was told is held, in the order it asked (the page's): the reply below
  // takes those entries without looking them up again.
  // (Pointers: unlike iterators, they survive the table growing.)
  std::vector<Entries::value_type*> held;
  query.known = [&entries, &held](const std::string& id, uint64_t revision) {
    auto it = entries.find(id);
    if (it == entries.end() || it->second.revision != revision) return false;
    held.push_back(&*it);
    return true;
  };
  VmPage page = vmm.query(query);
  if (page.unchanged && last != last_.end()) {
    ++replayed_;
    return last->second.text;
  }
  size_t next_held = 0;
  std::vector<Part> parts;
  parts.reserve(page.vms.size());
  std::deque<Entry> unkept;  // encoded for this reply only: over the budget
  bool whole = every_vm && page.vms.size() == page.total;  // what is not in it was removed
  ++round_;
  size_t size = 64;
  for (VmInfo& vm : page.vms) {
    Part part{nullptr, std::move(vm.exited_at), std::move(vm.uptime)};
    Entries::value_type* kept = nullptr;
    if (next_held < held.size() && held[next_held]->first == vm.id) {
      kept = held[next_held++];
    } else if (auto it = entries.find(vm.id); it != entries.end()) {
      kept = &*it;
    }
    if (kept && kept->second.revision == vm.revision) {
      kept->second.round = round_;
      part.entry = &kept->second;  // nodes stay put when the table grows
    } else {
      if (kept) forget(entries, entries.find(vm.id));
      std::string id = vm.id;
      Entry e = encode(vm, brief);
      ++encoded_;
      e.round = round_;
      if (bytes_ + e.bytes <= max_bytes_) {
        bytes_ += e.bytes;
        part.entry = &entries.emplace(std::move(id), std::move(e)).first->second;
      } else {
        part.entry = &unkept.emplace_back(std::move(e));
      }
    }
    const Entry& e = *part.entry;
    size += e.head.size() + e.middle.size() + e.tail.size() + 2 * 16 + part.exited_at.size() + part.uptime.size();
    parts.push_back(std::move(part));
  }
  // One allocation for the reply: at a thousand VMs it is a megabyte, and growing it step by
  // step was most of the call (copies, and page faults on each new block).
  // As nlohmann::json prints the object: keys sorted, no spaces.
  std::string out;
  out.reserve(size);
  out += "{\"port_mapping_enabled\":";
  out += port_mapping_enabled ? "true" : "false";
  out += ",\"total\":" + std::to_string(page.total) + ",\"vms\":[";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ',';
    const Entry& e = *parts[i].entry;
    out += e.head;
    append_string(&out, parts[i].exited_at);
    out += e.middle;
    append_string(&out, parts[i].uptime);
    out += e.tail;
  }
  out += "]}";
  if (whole)
    for (auto it = entries.begin(); it != entries.end();) {
      auto next = std::next(it);
      if (it->second.round != round_) forget(entries, it);
      it = next;
    }
  // Pages of a table that shrank can leave entries behind: bounded by forgetting them all.
  if (entries.size() > std::max<size_t>(256, 2 * static_cast<size_t>(page.total)))
    while (!entries.empty()) forget(entries, entries.begin());
  if (last == last_.end() && last_.size() >= kLastReplies) last_.clear();
  if (out.size() <= max_bytes_ / kLastReplies) last_[key] = Last{page.stamp, out};
  else last_.erase(key);
  return out;
}

size_t StatusCache::size() const {
  std::lock_guard lock(mu_);
  return brief_.size() + full_.size();
}

size_t StatusCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

uint64_t StatusCache::replayed() const {
  std::lock_guard lock(mu_);
  return replayed_;
}

uint64_t StatusCache::encoded() const {
  std::lock_guard lock(mu_);
  return encoded_;
}

}  // namespace dstackvmm::rpc
