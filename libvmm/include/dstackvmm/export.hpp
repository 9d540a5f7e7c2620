// SPDX-License-Identifier: Apache-2.0
// DSTACKVMM_EXPORT marks the public API. The library is compiled with hidden visibility, so
// only what carries it is exported from libdstackvmm.so; everything else stays private.
#pragma once

#if defined(__GNUC__)
#define DSTACKVMM_EXPORT __attribute__((visibility("default")))
#else
#define DSTACKVMM_EXPORT
#endif

// For what an exported class keeps private (its Impl), which would otherwise be exported with it.
#if defined(__GNUC__)
#define DSTACKVMM_HIDDEN __attribute__((visibility("hidden")))
#else
#define DSTACKVMM_HIDDEN
#endif
