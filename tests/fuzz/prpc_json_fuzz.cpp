// SPDX-License-Identifier: Apache-2.0
// Every /prpc decode: a JSON body or a GET query string into the request types.
#include "base/json_limits.hpp"
#include "rpc/json_codec.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& j : {internal::parse_json(text), rpc::query_to_json(text)}) {
    if (!j.is_object()) continue;
    auto each = [&](auto&& f) {
      try {
        f();
      } catch (const rpc::DecodeError&) {
      }
    };
    each([&] { (void)rpc::decode_vm_configuration(j).name.size(); });
    each([&] { (void)rpc::decode_vm_update(j).id.size(); });
    each([&] { (void)rpc::decode_ports(j).size(); });
    each([&] { (void)rpc::decode_gpus(j); });
    each([&] { (void)rpc::get_bytes(j, "quote"); });
    each([&] { (void)rpc::get_strings(j, "ids"); });
    each([&] { (void)rpc::get_opt_u32(j, "vcpu"); });
    (void)j.dump();
  }
  return 0;
}
