// SPDX-License-Identifier: Apache-2.0
// Every /prpc decode: a JSON body or a GET query string into the request types.
#include "base/json_limits.hpp"
#include "wire/json_codec.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& j : {internal::parse_json(text), wire::query_to_json(text)}) {
    if (!j.is_object()) continue;
    auto each = [&](auto&& f) {
      try {
        f();
      } catch (const wire::DecodeError&) {
      }
    };
    each([&] { (void)wire::decode_vm_configuration(j).name.size(); });
    each([&] { (void)wire::decode_vm_update(j).id.size(); });
    each([&] { (void)wire::decode_ports(j).size(); });
    each([&] { (void)wire::decode_gpus(j); });
    each([&] { (void)wire::get_bytes(j, "quote"); });
    each([&] { (void)wire::get_strings(j, "ids"); });
    each([&] { (void)wire::get_opt_u32(j, "vcpu"); });
    (void)j.dump();
  }
  return 0;
}
