// SPDX-License-Identifier: Apache-2.0
// Browser-origin safety of the management API (request_guard.hpp).
#include <dstackvmm/server/request_guard.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace dstackvmm {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "name:port", "[v6]:port", "name" -> the name part ("v6" without brackets).
std::string host_part(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    return close == std::string_view::npos ? std::string(authority) : std::string(authority.substr(1, close - 1));
  }
  auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(':') == colon) return std::string(authority.substr(0, colon));
  return std::string(authority);
}

bool console_page(std::string_view path) {
  return path == "/" || path == "/v1" || path == "/beta" || path == "/api-docs/docs";
}

GuardVerdict refuse(int status, std::string message) { return GuardVerdict{status, std::move(message)}; }

}  // namespace

RequestGuard::RequestGuard(ListenAddress listen, std::vector<std::string> allowed_hosts) : listen_(std::move(listen)) {
  for (const auto& n : allowed_hosts) names_.push_back(lower(n));
  names_.push_back("localhost");
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0]) names_.push_back(lower(name));
  if (listen_.kind == ListenAddress::Kind::kTcp && !is_ip_address(listen_.host)) names_.push_back(lower(listen_.host));
}

bool RequestGuard::host_allowed(std::string_view host_header) const {
  std::string host = lower(host_part(host_header));
  if (host.empty()) return false;
  if (is_ip_address(host)) return true;  // rebinding needs a name the attacker's DNS answers for
  return std::find(names_.begin(), names_.end(), host) != names_.end();
}

GuardVerdict RequestGuard::check(const GuardRequest& r) const {
  if (listen_.kind != ListenAddress::Kind::kTcp) return {};
  if (!host_allowed(r.host))
    return refuse(403, "Host '" + std::string(r.host) + "' is not a name this daemon serves as; use its address, or add the "
                       "name to allowed_hosts when a proxy forwards it");
  if (!r.origin.empty()) {
    auto scheme_end = r.origin.find("://");
    std::string scheme = scheme_end == std::string_view::npos ? "" : lower(r.origin.substr(0, scheme_end));
    std::string authority = scheme_end == std::string_view::npos ? "" : lower(r.origin.substr(scheme_end + 3));
    if ((scheme != "http" && scheme != "https") || authority != lower(r.host))
      return refuse(403, "cross-origin request refused (Origin " + std::string(r.origin) +
                             "): the daemon answers its own pages and non-browser clients only");
  }
  std::string site = lower(r.sec_fetch_site);
  if ((site == "cross-site" || site == "same-site") &&
      !(r.method == "GET" && lower(r.sec_fetch_mode) == "navigate" && console_page(r.path)))
    return refuse(403, "cross-site request refused (Sec-Fetch-Site: " + site + ")");
  if (r.rpc && !r.reads_only) {
    if (r.method != "POST")
      return refuse(405, "this method changes VMs and is taken only as a POST with a JSON or protobuf body "
                         "(Content-Type: application/json or application/octet-stream)");
    std::string type = lower(r.content_type.substr(0, r.content_type.find(';')));
    while (!type.empty() && type.back() == ' ') type.pop_back();
    if (type != "application/json" && type != "application/octet-stream" && type != "application/x-protobuf" &&
        type != "application/protobuf")
      return refuse(415, "this method changes VMs and is taken only with Content-Type: application/json (or a protobuf "
                         "body as application/octet-stream), not '" + std::string(r.content_type) +
                         "'; with curl, add -H 'Content-Type: application/json'");
  }
  return {};
}

}  // namespace dstackvmm
