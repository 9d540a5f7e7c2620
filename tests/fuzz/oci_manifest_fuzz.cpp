// SPDX-License-Identifier: Apache-2.0
// OCI manifests and indexes as a registry (or anyone on the path to it) sends them.
#include "image/oci_manifest.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = internal::parse_oci_manifest(std::string_view(reinterpret_cast<const char*>(data), size));
  if (m.ok() && m->amd64_digest.empty() && m->layers.empty()) __builtin_trap();  // one of the two is always set
  return 0;
}
