// SPDX-License-Identifier: Apache-2.0
// Hashes and encodings the wire format needs, from OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace dstackvmm::internal {

std::string sha256(std::string_view data);       // 32 raw bytes
std::string sha256_hex(std::string_view data);   // 64 lowercase hex chars
// The sha256 of a file's bytes, read in blocks (any size); "" when it cannot be read.
std::string sha256_file_hex(const std::string& path);
std::string base64(std::string_view data);       // standard alphabet, padded
std::string random_bytes(size_t n);
std::string new_uuid_v4();

}  // namespace dstackvmm::internal
