// SPDX-License-Identifier: Apache-2.0
#include "events_route.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include <dstackvmm/vm_id.hpp>

namespace dstackvmm::daemon {

namespace {

using Clock = std::chrono::steady_clock;
// A comment line this often keeps proxies from closing a quiet stream; the wait in between is
// also how soon a reader that went away (or a daemon stopping) is noticed.
constexpr auto kHeartbeat = std::chrono::seconds(15);
constexpr auto kWait = std::chrono::seconds(1);
constexpr size_t kBatch = 256;

std::string encode(const VmActivity& a) {
  nlohmann::json j{{"seq", a.seq}, {"time_ms", a.time_ms}, {"vm_id", a.vm_id}, {"kind", a.kind}, {"status", a.status}};
  if (!a.event.empty()) j["event"] = a.event;
  if (!a.detail.empty()) j["detail"] = a.detail;
  if (a.exit_code) j["exit_code"] = *a.exit_code;
  if (a.exit_signal) j["exit_signal"] = *a.exit_signal;
  // A guest's payload is not trusted to be UTF-8; one line of JSON whatever it holds.
  return "id: " + std::to_string(a.seq) + "\ndata: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

const std::string kGap =
    "data: {\"kind\":\"gap\",\"detail\":\"entries were missed (the daemon restarted or the journal moved on); "
    "what follows is the oldest it holds\"}\n\n";

struct Stream {
  uint64_t after = 0;
  std::string vm;
  bool follow = true;
  Clock::time_point last_sent = Clock::now();
};

std::optional<uint64_t> parse_seq(const std::string& text) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

void serve_events(const VmManager& vmm, FollowerSlots& slots, const std::atomic<bool>& stopping,
                  const httplib::Request& req, httplib::Response& res) {
  auto fail = [&](int status, const std::string& message) {
    res.status = status;
    res.set_header("X-Error-Code", status == 400 ? "invalid_argument" : "resource_exhausted");
    res.set_content(message + "\n", "text/plain; charset=utf-8");
  };
  auto s = std::make_shared<Stream>();
  s->vm = req.get_param_value("vm");
  if (!s->vm.empty() && !validate_vm_id(s->vm).ok()) return fail(400, "invalid vm: not a VM id");
  std::string resume = req.has_header("Last-Event-ID") ? req.get_header_value("Last-Event-ID") : req.get_param_value("since");
  if (!resume.empty()) {
    auto seq = parse_seq(resume);
    if (!seq) return fail(400, "invalid Last-Event-ID or since: " + resume.substr(0, 32) + " (a number the stream gave)");
    s->after = *seq;
  }
  if (req.has_param("follow")) {
    std::string f = req.get_param_value("follow");
    s->follow = !(f == "false" || f == "0");
  }
  std::shared_ptr<void> slot;
  if (s->follow && !(slot = slots.try_acquire()))
    return fail(503, "too many followers of /events and /logs (" + std::to_string(slots.capacity()) +
                         " at once, max_blocking); try again later or read with follow=false");
  const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");  // see serve_logs: no gzip hold-back
  res.set_header("Cache-Control", "no-store");
  res.set_chunked_content_provider("text/event-stream", [&vmm, &stopping, s, slot](size_t, httplib::DataSink& sink) {
    if (stopping || !sink.is_writable()) return false;
    auto deadline = s->follow ? Clock::now() + kWait : Clock::now();
    VmActivityPage page = vmm.activity(s->after, kBatch, s->vm, deadline);
    std::string out;
    if (page.gap) out += kGap;
    for (const auto& a : page.entries) out += encode(a);
    if (!page.entries.empty()) s->after = page.entries.back().seq;
    else if (page.gap || page.last_seq > s->after) s->after = page.last_seq;
    if (out.empty() && Clock::now() - s->last_sent >= kHeartbeat) out = ": heartbeat\n\n";
    if (!out.empty()) {
      s->last_sent = Clock::now();
      if (!sink.write(out.data(), out.size())) return false;
    }
    // Without follow: what the journal held, then the end (a full batch means more to send).
    if (!s->follow && page.entries.size() < kBatch) sink.done();
    return true;
  });
}

}  // namespace dstackvmm::daemon
