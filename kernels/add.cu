// Elementwise add GPU twin: one thread per float4 (grid-stride) when all pointers are 16-byte
// aligned, then the last n % 4 values one per thread; scalar throughout otherwise.
#include <algorithm>
#include <cstdint>

#include "kernels/add.h"
#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 4;

__global__ void add_forward_kernel(int64_t n, const float* a, const float* b, float* y, bool vec) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n4 = n / 4;
        for (int64_t i = first; i < n4; i += stride) {
            const float4 u = reinterpret_cast<const float4*>(a)[i];
            const float4 v = reinterpret_cast<const float4*>(b)[i];
            reinterpret_cast<float4*>(y)[i] =
                make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
        }
        done = n4 * 4;
    }
    for (int64_t i = done + first; i < n; i += stride)
        y[i] = a[i] + b[i];
}

bool aligned16(const void* p) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void add_forward(int64_t n, const float* a, const float* b, float* y, Stream stream) {
    GNET_CHECK(n >= 0, "gpu::add_forward: negative size");
    if (n == 0) return;
    const int blocks =
        int(std::max<int64_t>(1, std::min(ceil_div(n / 4 + 1, kThreads), kMaxBlocks)));
    launch<add_forward_kernel>(blocks, kThreads, 0, stream, n, a, b, y,
                               aligned16(a) && aligned16(b) && aligned16(y));
}

}  // namespace gnet::gpu
