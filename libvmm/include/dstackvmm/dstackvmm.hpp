// SPDX-License-Identifier: Apache-2.0
// Umbrella header: the whole public API of libdstackvmm.
#pragma once

#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/listen_address.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/rpc.hpp>
#include <dstackvmm/unix_socket.hpp>
#include <dstackvmm/version.hpp>
