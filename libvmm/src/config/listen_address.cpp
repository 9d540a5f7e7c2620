// SPDX-License-Identifier: Apache-2.0
// Where a server listens: a unix socket path or a TCP host and port.
#include <dstackvmm/listen_address.hpp>

#include <arpa/inet.h>

#include <cctype>

namespace dstackvmm {

bool is_ip_address(std::string_view text) {
  std::string s(text);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

namespace {
bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  return true;
}

Result<uint16_t> parse_port(std::string_view text, std::string_view address) {
  uint32_t v = 0;
  if (text.empty() || text.size() > 5) v = 0;
  else
    for (char c : text) v = std::isdigit(static_cast<unsigned char>(c)) ? v * 10 + (c - '0') : 70000;
  if (v < 1 || v > 65535)
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid port '" + std::string(text) + "' in '" + std::string(address) + "'");
  return static_cast<uint16_t>(v);
}
}  // namespace

bool ListenAddress::is_local() const {
  if (kind == Kind::kUnix) return true;
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

Result<ListenAddress> parse_listen_address(std::string_view address, uint32_t port) {
  ListenAddress out;
  auto bad = [&](std::string why) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(address) + "' " + why +
                          " (expected unix:PATH, an IP address with `port`, or HOST:PORT)");
  };
  if (address.substr(0, 5) == "unix:") {
    out.kind = ListenAddress::Kind::kUnix;
    out.path = std::string(address.substr(5));
    if (out.path.empty()) return bad("names no socket path");
    if (out.path.size() > 107) return bad("is longer than a unix socket path may be (107 bytes)");
    return out;
  }
  if (is_ip_address(address) || address == "localhost") {
    if (port < 1 || port > 65535)
      return make_error(ErrorCode::kInvalidArgument,
                        "port " + std::to_string(port) + " is not in 1..65535");
    out.host = std::string(address);
    out.port = static_cast<uint16_t>(port);
    return out;
  }
  std::string_view host, port_text;
  if (!address.empty() && address.front() == '[') {  // [v6]:port
    auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return bad("is not a valid address");
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
    if (!is_ip_address(host)) return bad("is not a valid address");
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("is not an IP address");
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
    if (!is_ip_address(host) && !is_host_name(host)) return bad("is not a valid address");
  }
  auto p = parse_port(port_text, address);
  if (!p.ok()) return p.error();
  out.host = std::string(host);
  out.port = *p;
  return out;
}

std::string ListenAddress::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string ListenAddress::url() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "http://" + to_string();
}

}  // namespace dstackvmm
