// SPDX-License-Identifier: Apache-2.0
// prpc's protobuf mode, as a mapping onto the JSON the method handlers already take and give:
// a binary request becomes the JSON it would have been sent as, and the handler's JSON answer
// becomes the binary message. So both modes share one method table and one set of handlers.
#pragma once

#include <string>
#include <string_view>

#include "wire/json_codec.hpp"

namespace dstackvmm::rpc {

using wire::json;

// `type` is a message's full name: "vmm.VmConfiguration", "guest_api.GuestInfo",
// "google.protobuf.Empty". Returns false (and says why) for bytes that do not parse as it.
// Unset proto3-optional fields and unset messages become null, as in JSON mode.
bool proto_to_json(const std::string& type, std::string_view bytes, json& out, std::string* why);

// The handler's JSON answer as the binary message `type`: fields by name, bytes from hex,
// unknown keys and nulls skipped.
std::string json_to_proto(const std::string& type, const json& value);

// Every message of a .proto package ("vmm", "guest_api") as an OpenAPI 3.1 schema, keyed by
// full name, read from the descriptors the binary mode uses: the JSON mapping's types (bytes as
// hex strings, 64-bit numbers as numbers), and null allowed where a field has presence (proto3
// optional, or a message), as both modes send an unset one.
json message_schemas(const std::string& package);

// prpc.PrpcError { message = 1 }, encoded.
std::string prpc_error(const std::string& message);

}  // namespace dstackvmm::rpc
