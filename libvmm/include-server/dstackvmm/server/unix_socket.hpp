// SPDX-License-Identifier: Apache-2.0
// Claiming a unix socket path for a server: replace a stale socket, never a live one.
#pragma once


#include <filesystem>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// Makes `path` free to bind. Creates the parent folder. If a socket file is there and a
// server answers on it: kAlreadyExists. If nothing answers: removed when `reuse`, else
// kAlreadyExists telling the user about `reuse`. A non-socket file is never removed.
Status claim_unix_socket_path(const std::filesystem::path& path, bool reuse);

// True when something accepts connections on the unix socket at `path`.
bool unix_socket_is_live(const std::filesystem::path& path);

}  // namespace dstackvmm
