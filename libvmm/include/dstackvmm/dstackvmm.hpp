// SPDX-License-Identifier: Apache-2.0
// Umbrella header: the whole public API of libdstackvmm.
#pragma once

#include <dstackvmm/cid_pool.hpp>
#include <dstackvmm/config.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/gpu_inventory.hpp>
#include <dstackvmm/image.hpp>
#include <dstackvmm/image_registry.hpp>
#include <dstackvmm/listen_address.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/port_mapping.hpp>
#include <dstackvmm/process_launcher.hpp>
#include <dstackvmm/qemu_command.hpp>
#include <dstackvmm/qmp_client.hpp>
#include <dstackvmm/restart_policy.hpp>
#include <dstackvmm/version.hpp>
#include <dstackvmm/vm_id.hpp>
#include <dstackvmm/vm_logs.hpp>
#include <dstackvmm/vm_manager.hpp>
