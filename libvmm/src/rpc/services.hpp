// SPDX-License-Identifier: Apache-2.0
// The method tables of the prpc services: one handler per method, decode -> one call -> encode.
#pragma once

#include <functional>
#include <vector>

#include <dstackvmm/image_registry.hpp>
#include <dstackvmm/vm_manager.hpp>

#include "wire/json_codec.hpp"

namespace dstackvmm::rpc {

// The services speak the wire's JSON mapping.
using namespace dstackvmm::wire;  // NOLINT(google-build-using-namespace)

class StatusCache;

struct Context {
  VmManager* vmm = nullptr;
  ImageRegistry* registry = nullptr;  // pulls outlive a call, so the dispatcher owns it
  StatusCache* status_cache = nullptr;  // owned by the dispatcher too
};

struct Method {
  const char* name;
  std::function<Result<json>(const Context&, const json&)> handler;
  const char* input = "Empty";   // message names, for the OpenAPI document
  const char* output = "Empty";
  // Optional: the reply as JSON text, for the JSON mode, when building it as a tree would
  // cost too much (Status at scale). It must say what `handler` says, byte for byte.
  std::function<Result<std::string>(const Context&, const json&)> json_text = nullptr;
  // Changes nothing (listings, lookups). Only these may be called by GET or with a body of
  // any type: a page on another site can send those, never a JSON or protobuf POST.
  bool reads_only = false;
};

std::vector<Method> vmm_methods();
std::vector<Method> guest_methods();
json openapi_document(const std::vector<Method>& vmm, const std::vector<Method>& guest, const std::string& version);

}  // namespace dstackvmm::rpc
