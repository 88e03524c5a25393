// Small things every op shares: host/device qualifiers, index helpers, accumulation mode.
// Compiles with plain g++ (no CUDA headers needed).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GNET_HD __host__ __device__ __forceinline__
#else
#define GNET_HD inline
#endif

// Set where device code is compiled: nvcc's device pass, or the emulated CUDA device (emu/, one
// host-compiler pass for host and device code alike). Device-only paths (intrinsics such as __ldg
// or __umulhi) test this, so the emulator runs the paths the GPU runs.
#if defined(__CUDA_ARCH__) || defined(GNET_EMU)
#define GNET_DEVICE_CODE 1
#else
#define GNET_DEVICE_CODE 0
#endif

namespace gnet {

// Whether an op overwrites its output (`=`) or adds into it (`+=`).
// Parameter gradients accumulate, activation gradients overwrite.
enum class Accum { Overwrite, Add };

GNET_HD int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// Output size of a convolution / pooling window along one axis.
GNET_HD int conv_out_size(int in, int kernel, int stride, int pad) {
    return (in + 2 * pad - kernel) / stride + 1;
}

}  // namespace gnet
