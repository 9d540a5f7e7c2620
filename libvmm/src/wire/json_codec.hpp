// SPDX-License-Identifier: Apache-2.0
// prpc JSON <-> library types: proto field names, bytes as lowercase hex (0x accepted),
// unknown fields ignored, missing fields defaulted, null only for optional fields.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <dstackvmm/vm_info.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm::wire {

using nlohmann::json;

// A request that does not decode; the dispatcher answers 400 "failed to decode request: ...".
struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string get_string(const json& j, const char* key);
uint32_t get_u32(const json& j, const char* key);
bool get_bool(const json& j, const char* key);
std::optional<std::string> get_opt_string(const json& j, const char* key);
std::optional<uint32_t> get_opt_u32(const json& j, const char* key);
std::optional<bool> get_opt_bool(const json& j, const char* key);
std::vector<std::string> get_strings(const json& j, const char* key);
std::string get_bytes(const json& j, const char* key);  // hex -> raw bytes

std::string hex_encode(std::string_view bytes);

VmConfiguration decode_vm_configuration(const json& j);
json encode_vm_configuration(const VmConfiguration& c);
std::vector<PortMapping> decode_ports(const json& j);
std::optional<GpuRequest> decode_gpus(const json& j);
VmUpdate decode_vm_update(const json& j);
// Only what `u` sets, with the update_* flags upstream's UpdateVmRequest wants.
json encode_vm_update(const VmUpdate& u);
json encode_vm_info(const VmInfo& info, bool brief);
// What the wire carries of a VmInfo (created_at_ms, pid and agent_port stay 0).
VmInfo decode_vm_info(const json& j);

// A GET query string as the JSON object serde_qs would build: `a=1&ids[0]=x&ids[1]=y`.
json query_to_json(std::string_view query);

}  // namespace dstackvmm::wire
