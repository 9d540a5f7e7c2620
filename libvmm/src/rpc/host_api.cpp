// SPDX-License-Identifier: Apache-2.0
// The host API guests call (/api): Info, Notify, GetSealingKey.
#include "base/json_limits.hpp"
#include "rpc/host_api.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <dstackvmm/version.hpp>

#include "wire/json_codec.hpp"

namespace dstackvmm::rpc {

using namespace dstackvmm::wire;  // NOLINT(google-build-using-namespace)

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxQuote = 1u << 20;
constexpr auto kKeyProviderTimeout = std::chrono::seconds(30);

Error kp_error(const std::string& why) {
  return make_error(ErrorCode::kUnavailable, "Failed to get sealing key from key provider: " + why);
}

bool io_all(int fd, char* buf, size_t n, bool writing, Clock::time_point deadline) {
  size_t done = 0;
  while (done < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, static_cast<short>(writing ? POLLOUT : POLLIN), 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    ssize_t r = writing ? ::send(fd, buf + done, n - done, MSG_NOSIGNAL) : ::recv(fd, buf + done, n - done, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

json bytes_array(const std::string& s) {
  json a = json::array();
  for (unsigned char c : s) a.push_back(c);
  return a;
}

std::string bytes_from(const json& j, const char* key) {
  std::string out;
  for (const auto& b : j.at(key)) out += static_cast<char>(b.get<int>());
  return out;
}

}  // namespace

Result<std::pair<std::string, std::string>> get_sealing_key(const KeyProviderConfig& kp, const std::string& quote) {
  if (!kp.enabled) return make_error(ErrorCode::kFailedPrecondition, "Key provider is not enabled");
  if (quote.size() > kMaxQuote) return make_error(ErrorCode::kInvalidArgument, "Quote is too long");
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (inet_pton(AF_INET, kp.address.c_str(), &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(kp.port));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, kp.address.c_str(), &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(kp.port));
    len = sizeof(sockaddr_in6);
  } else {
    return kp_error("invalid address " + kp.address);
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return kp_error("cannot connect to " + kp.address + ":" + std::to_string(kp.port) + ": " + why);
  }
  auto deadline = Clock::now() + kKeyProviderTimeout;
  std::string request = json{{"quote", bytes_array(quote)}}.dump();
  uint32_t n = htonl(static_cast<uint32_t>(request.size()));
  bool sent = io_all(fd, reinterpret_cast<char*>(&n), 4, true, deadline) && io_all(fd, request.data(), request.size(), true, deadline);
  uint32_t reply_len = 0;
  bool got_len = sent && io_all(fd, reinterpret_cast<char*>(&reply_len), 4, false, deadline);
  reply_len = ntohl(reply_len);
  if (!got_len || reply_len > (16u << 20)) {
    ::close(fd);
    return kp_error(got_len ? "reply too large" : "no reply");
  }
  std::string reply(reply_len, '\0');
  bool got = io_all(fd, reply.data(), reply.size(), false, deadline);
  ::close(fd);
  if (!got) return kp_error("truncated reply");
  json j = internal::parse_json(reply);
  try {
    return std::pair{bytes_from(j, "encrypted_key"), bytes_from(j, "provider_quote")};
  } catch (const std::exception& e) {
    return kp_error(std::string("malformed reply: ") + e.what());
  }
}

std::pair<int, std::string> handle_host_api(VmManager& vmm, const std::string& vm_id, const std::string& method,
                                            const std::string& body) {
  auto fail = [](const std::string& message) { return std::pair{400, json{{"error", message}}.dump(2)}; };
  json in = body.empty() ? json::object() : internal::parse_json(body);
  if (in.is_discarded()) return fail("failed to decode request: invalid JSON");
  if (in.is_null()) in = json::object();
  try {
    if (method == "Info") return {200, json{{"name", vmm.config().host_api.ident}, {"version", api_version()}}.dump()};
    if (method == "Notify") {
      auto s = vmm.notify(vm_id, get_string(in, "event"), get_string(in, "payload"));
      return s.ok() ? std::pair{200, std::string("null")} : fail(s.error().message);
    }
    if (method == "GetSealingKey") {
      auto r = get_sealing_key(vmm.config().key_provider, get_bytes(in, "quote"));
      if (!r.ok()) return fail(r.error().message);
      return {200, json{{"encrypted_key", hex_encode(r->first)}, {"provider_quote", hex_encode(r->second)}}.dump()};
    }
  } catch (const DecodeError& e) {
    return fail(std::string("failed to decode request: ") + e.what());
  }
  return fail("Service not found: " + method);
}

}  // namespace dstackvmm::rpc
