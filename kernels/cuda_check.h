// Check macros for the CUDA runtime and kernel launches. Include only where CUDA is built
// (.cu files, or .cpp files inside `#if GNET_HAVE_CUDA`).
//
// GNET_SYNC_DEBUG=1 in the environment makes every GNET_LAUNCH_CHECK synchronise its stream, so an
// asynchronous fault is reported at the launch that caused it instead of at some later call.
#pragma once

#include <cuda_runtime.h>

#include "kernels/error.h"

namespace gnet {
bool sync_debug_enabled();  // reads GNET_SYNC_DEBUG once
}

#define GNET_CUDA_CHECK(expr)                                                                 \
    do {                                                                                      \
        cudaError_t gnet_cuda_rc_ = (expr);                                                   \
        if (gnet_cuda_rc_ != cudaSuccess)                                                     \
            ::gnet::throw_check_failure("CUDA", #expr, __FILE__, __LINE__,                    \
                                        std::string(cudaGetErrorName(gnet_cuda_rc_)) + ": " + \
                                            cudaGetErrorString(gnet_cuda_rc_));               \
    } while (0)

// After every kernel launch: catches bad launch configurations at once and, with
// GNET_SYNC_DEBUG=1, execution faults too.
#define GNET_LAUNCH_CHECK(stream)                                                         \
    do {                                                                                  \
        GNET_CUDA_CHECK(cudaGetLastError());                                              \
        if (::gnet::sync_debug_enabled()) GNET_CUDA_CHECK(cudaStreamSynchronize(stream)); \
    } while (0)
