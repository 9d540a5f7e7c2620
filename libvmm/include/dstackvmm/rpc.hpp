// SPDX-License-Identifier: Apache-2.0
// The prpc services without HTTP: a method name and a JSON body in, a status and body out.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/config.hpp>

namespace dstackvmm {

struct RpcReply {
  int status = 200;  // 200, or 400 with {"error": "..."} as upstream answers every failure
  std::string body;  // JSON text
};

struct RpcOptions {
  std::filesystem::path sysfs_root = "/sys";  // for bridge detection in GetMeta
};

// Dispatches the Vmm service's methods (`/prpc/<Method>`). Thread-safe.
class RpcDispatcher {
 public:
  RpcDispatcher(const Config& config, RpcOptions options = {});
  ~RpcDispatcher();
  RpcDispatcher(const RpcDispatcher&) = delete;
  RpcDispatcher& operator=(const RpcDispatcher&) = delete;

  // `method` may carry upstream's legacy "Teepod." or a "Vmm." prefix. An empty body, "null"
  // and "{}" all mean "no input".
  RpcReply call(std::string_view method, std::string_view json_body) const;

  // The method names served, in table order.
  std::vector<std::string> methods() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm
