// SPDX-License-Identifier: Apache-2.0
// app-compose.json as a user (or a script) sends it.
#include "tee/compose_facts.hpp"
#include "vm/app_compose.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)internal::validate_compose(text);
  (void)internal::compose_enables_gateway(text);
  (void)internal::resolve_app_id(std::nullopt, text);
  (void)internal::validate_vm_name(text);
  return 0;
}
