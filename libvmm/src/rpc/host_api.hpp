// SPDX-License-Identifier: Apache-2.0
// The host API guests call (/api): Info, Notify, GetSealingKey. The caller's identity (`vm_id`)
// comes from the channel it arrived on, never from the request.
#pragma once

#include <string>
#include <utility>

#include <dstackvmm/config.hpp>
#include <dstackvmm/vm_manager.hpp>

namespace dstackvmm::rpc {

// Returns (HTTP status, JSON body) for one call from the VM `vm_id`.
std::pair<int, std::string> handle_host_api(VmManager& vmm, const std::string& vm_id, const std::string& method,
                                            const std::string& body);

// Relays a quote to the local key provider: 4-byte big-endian length + {"quote":[bytes]}, and
// the same framing back with {"encrypted_key":[...],"provider_quote":[...]}.
Result<std::pair<std::string, std::string>> get_sealing_key(const KeyProviderConfig& config, const std::string& quote);

}  // namespace dstackvmm::rpc
