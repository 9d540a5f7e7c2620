// SPDX-License-Identifier: Apache-2.0
#include "metrics.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <dstackvmm/version.hpp>

namespace dstackvmm::daemon {

namespace {

// A label value, escaped as the text format asks (backslash, quote, newline).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

std::string RequestMetrics::route(const std::string& path) const { return known_.count(path) ? path : "other"; }

void RequestMetrics::observe(const std::string& route, int status, std::chrono::duration<double> took) {
  std::lock_guard lock(mu_);
  Series& s = series_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (took.count() <= kBuckets[i]) ++s.buckets[i];
  ++s.count;
  s.sum += took.count();
  ++s.by_status[status];
}

std::string RequestMetrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  family(out, "dstack_vmm_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [route, s] : series_)
    for (const auto& [status, n] : s.by_status)
      out << "dstack_vmm_http_requests_total{route=\"" << label(route) << "\",code=\"" << status << "\"} " << n << "\n";
  family(out, "dstack_vmm_http_request_duration_seconds", "histogram",
         "Time to answer a request (streams such as /logs and /events are not counted).");
  for (const auto& [route, s] : series_) {
    std::string r = label(route);
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out << "dstack_vmm_http_request_duration_seconds_bucket{route=\"" << r << "\",le=\"" << kBuckets[i] << "\"} " << s.buckets[i] << "\n";
    out << "dstack_vmm_http_request_duration_seconds_bucket{route=\"" << r << "\",le=\"+Inf\"} " << s.count << "\n";
    out << "dstack_vmm_http_request_duration_seconds_sum{route=\"" << r << "\"} " << s.sum << "\n";
    out << "dstack_vmm_http_request_duration_seconds_count{route=\"" << r << "\"} " << s.count << "\n";
  }
  return out.str();
}

std::string render_metrics(const VmManager& vmm, const RequestMetrics& requests, std::chrono::seconds uptime) {
  ManagerStats st = vmm.stats();
  std::ostringstream out;
  family(out, "dstack_vmm_build_info", "gauge", "The daemon's version; always 1.");
  out << "dstack_vmm_build_info{version=\"" << label(std::string(api_version())) << "\",rev=\"" << label(std::string(git_rev())) << "\"} 1\n";
  family(out, "dstack_vmm_uptime_seconds", "gauge", "Seconds since the daemon started.");
  out << "dstack_vmm_uptime_seconds " << uptime.count() << "\n";
  family(out, "dstack_vmm_vms", "gauge", "VMs by status.");
  for (const char* s : {"running", "stopping", "stopped", "exited", "removing", "unknown"}) {
    auto it = st.vms_by_status.find(s);
    out << "dstack_vmm_vms{status=\"" << s << "\"} " << (it == st.vms_by_status.end() ? 0 : it->second) << "\n";
  }
  family(out, "dstack_vmm_vm_events_total", "counter", "VM lifecycle events since the daemon started, by kind (see GET /events).");
  for (const char* k : {"created", "started", "stopping", "stopped", "exited", "restarting", "restart_exhausted", "removing", "removed", "adopted", "panicked"}) {
    auto it = st.activity_totals.find(k);
    out << "dstack_vmm_vm_events_total{kind=\"" << k << "\"} " << (it == st.activity_totals.end() ? 0 : it->second) << "\n";
  }
  family(out, "dstack_vmm_guest_panics_dropped_total", "counter", "Guest kernel panics past the rate limit of one a second per VM, not recorded.");
  out << "dstack_vmm_guest_panics_dropped_total " << st.guest_panics_dropped << "\n";
  family(out, "dstack_vmm_vm_restarts_total", "counter", "Restarts by the auto-restart policy since the daemon started.");
  auto restarts = st.activity_totals.find("restarting");
  out << "dstack_vmm_vm_restarts_total " << (restarts == st.activity_totals.end() ? 0 : restarts->second) << "\n";
  family(out, "dstack_vmm_host_api_events_total", "counter", "Notifications from guests through the host API, by event.");
  for (const char* e : {"boot.progress", "boot.error", "shutdown.progress", "instance.info", "other"}) {
    auto it = st.guest_event_totals.find(e);
    out << "dstack_vmm_host_api_events_total{event=\"" << e << "\"} " << (it == st.guest_event_totals.end() ? 0 : it->second) << "\n";
  }
  family(out, "dstack_vmm_cids_used", "gauge", "vsock CIDs held by this daemon's VMs.");
  out << "dstack_vmm_cids_used " << st.cids_used << "\n";
  family(out, "dstack_vmm_cids_total", "gauge", "Size of the CID pool ([cvm] cid_pool_size).");
  out << "dstack_vmm_cids_total " << st.cids_total << "\n";
  family(out, "dstack_vmm_host_ports_used", "gauge", "Host ports mapped to VMs.");
  out << "dstack_vmm_host_ports_used " << st.host_ports_used << "\n";
  family(out, "dstack_vmm_gpus_used", "gauge", "GPUs attached to VMs.");
  out << "dstack_vmm_gpus_used " << st.gpus_used << "\n";
  // The process itself, as Prometheus client libraries name them.
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out << "process_resident_memory_bytes " << resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) << "\n";
  out << requests.render();
  return out.str();
}

}  // namespace dstackvmm::daemon
