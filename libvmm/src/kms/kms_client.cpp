// SPDX-License-Identifier: Apache-2.0
#include "kms/kms_client.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"

namespace dstackvmm::internal {

Result<std::string> kms_app_env_encrypt_pub_key(const std::string& kms, std::string_view app_id_hex) {
  if (kms.empty()) return make_error(ErrorCode::kFailedPrecondition, "KMS is not configured");
  httplib::Client client(kms);
  client.enable_server_certificate_verification(false);  // as upstream: the KMS answer is signed
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  constexpr size_t kMaxAnswer = 1u << 20;
  std::string body;
  bool too_big = false;
  httplib::Request req;
  req.method = "POST";
  req.path = "/prpc/GetAppEnvEncryptPubKey?json";
  req.body = nlohmann::json{{"app_id", std::string(app_id_hex)}}.dump();
  req.set_header("Content-Type", "application/json");
  // Read into our own buffer, so a KMS that sends without end is cut off at the bound.
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (body.size() + n > kMaxAnswer) {
      too_big = true;
      return false;
    }
    body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool sent = client.send(req, res, err);
  if (too_big) return make_error(ErrorCode::kUnavailable, "KMS at " + kms + " answered more than 1 MiB");
  if (!sent) return make_error(ErrorCode::kUnavailable, "Failed to reach KMS at " + kms + ": " + httplib::to_string(err));
  if (res.status < 200 || res.status >= 300)
    return make_error(ErrorCode::kUnavailable,
                      "Request failed with status=" + std::to_string(res.status) + ", error=" + body.substr(0, 512));
  auto out = parse_json(body);
  if (!out.is_object()) return make_error(ErrorCode::kUnavailable, "KMS answered with invalid JSON");
  return out.dump();
}

}  // namespace dstackvmm::internal
