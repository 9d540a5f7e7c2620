// SPDX-License-Identifier: Apache-2.0
// GET /metrics: Prometheus text exposition (version 0.0.4) of the engine's counts and of the
// daemon's own requests. Names follow Prometheus conventions: dstack_vmm_ prefix, _total for
// counters, base units (seconds, bytes).
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::daemon {

// Request counts and latencies by route. Routes are a fixed set (the known prpc and guest
// methods, the daemon's paths, "other"), so a client cannot grow the label space.
class RequestMetrics {
 public:
  static constexpr std::array<double, 10> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5};

  explicit RequestMetrics(std::set<std::string> known_routes) : known_(std::move(known_routes)) {}
  // The label of a request path: itself when known, else "other".
  std::string route(const std::string& path) const;
  void observe(const std::string& route, int status, std::chrono::duration<double> took);
  std::string render() const;

 private:
  struct Series {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
    std::map<int, uint64_t> by_status;
  };
  std::set<std::string> known_;
  mutable std::mutex mu_;
  std::map<std::string, Series> series_;
};

// The whole /metrics page.
std::string render_metrics(const VmManager& vmm, const RequestMetrics& requests, std::chrono::seconds uptime);

}  // namespace dstackvmm::daemon
