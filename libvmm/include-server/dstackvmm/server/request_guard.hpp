// SPDX-License-Identifier: Apache-2.0
// What a browser may not do to the management API, whatever the auth setting: a page on
// another site can make the operator's browser send a GET or a "simple" POST (a form, text)
// to the daemon, and with DNS rebinding read its answers. So on a TCP listener:
//  - the Host header must name the daemon (an IP address, localhost, this machine's name, or
//    a name of [allowed_hosts] a reverse proxy forwards), which DNS rebinding cannot fake;
//  - a browser's Origin must be the daemon's own, and a cross-site fetch (Sec-Fetch-Site) is
//    refused unless it is a navigation to the console;
//  - a method that changes anything is taken only as a POST whose body is JSON or protobuf,
//    which no page can send cross-site without a preflight that this daemon never grants.
// A unix socket is out of a browser's reach: nothing is checked there.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/listen_address.hpp>

namespace dstackvmm {

struct GuardRequest {
  std::string_view method;  // HTTP method
  std::string_view path;
  std::string_view host, origin, sec_fetch_site, sec_fetch_mode, content_type;  // headers ("" when absent)
  bool rpc = false;         // a /prpc or /guest call
  bool reads_only = true;   // rpc: the method changes nothing (RpcDispatcher::reads_only)
};

struct GuardVerdict {
  int status = 0;       // 0: allowed; else 403, 405 or 415
  std::string message;  // what was refused and how to do it right
  bool allowed() const { return status == 0; }
};

class RequestGuard {
 public:
  // `allowed_hosts`: names besides IP addresses, localhost and this machine's host name
  // (case-insensitive, without a port).
  RequestGuard(ListenAddress listen, std::vector<std::string> allowed_hosts);
  GuardVerdict check(const GuardRequest& request) const;

 private:
  bool host_allowed(std::string_view host_header) const;
  ListenAddress listen_;
  std::vector<std::string> names_;  // lowercase
};

}  // namespace dstackvmm
