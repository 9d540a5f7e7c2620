// SPDX-License-Identifier: Apache-2.0
// prpc's protobuf mode: any bytes as each request message the methods take, then the JSON
// they become back into the message (as a reply would be).
#include "rpc/proto_codec.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const char* type : {"vmm.VmConfiguration", "vmm.UpdateVmRequest", "vmm.StatusRequest", "vmm.ResizeVmRequest",
                           "vmm.AppId", "vmm.StatusResponse", "guest_api.Id", "guest_api.SystemInfo"}) {
    rpc::json j;
    std::string why;
    if (rpc::proto_to_json(type, bytes, j, &why)) (void)rpc::json_to_proto(type, j);
  }
  return 0;
}
