// Check macros for the CUDA runtime. Include only where CUDA is built (.cu files, or .cpp files
// inside `#if GNET_HAVE_CUDA`). Kernel launches and their checks: kernels/launch.cuh.
//
// GNET_SYNC_DEBUG=1 in the environment makes every launch synchronise its stream, so an
// asynchronous fault is reported at the launch that caused it instead of at some later call.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "kernels/error.h"

namespace gnet {
bool sync_debug_enabled();  // reads GNET_SYNC_DEBUG once

namespace launch_detail {  // for gnet::launch (kernels/launch.cuh)
// "kernel_name" (or "kernel_name<...>") from the __PRETTY_FUNCTION__ of a launch instantiation.
std::string kernel_name(const char* pretty_function);
// "CUDA error: <reason> (<stage> of kernel <kernel>)"; stage is "launch" or "execution".
[[noreturn]] void throw_launch_failure(const std::string& kernel, const char* stage,
                                       cudaError_t rc);
}  // namespace launch_detail
}  // namespace gnet

#define GNET_CUDA_CHECK(expr)                                                                 \
    do {                                                                                      \
        cudaError_t gnet_cuda_rc_ = (expr);                                                   \
        if (gnet_cuda_rc_ != cudaSuccess)                                                     \
            ::gnet::throw_check_failure("CUDA", #expr, __FILE__, __LINE__,                    \
                                        std::string(cudaGetErrorName(gnet_cuda_rc_)) + ": " + \
                                            cudaGetErrorString(gnet_cuda_rc_));               \
    } while (0)
