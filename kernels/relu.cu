// ReLU GPU twin: one thread per float4 (grid-stride); a scalar kernel when a pointer is not
// 16-byte aligned. The vector kernel also handles the last n % 4 values, one per thread.
#include <algorithm>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/relu.h"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 4;

// NaN passes through (x < 0 is false for NaN), as in PyTorch.
__device__ __forceinline__ float relu1(float x) {
    return x < 0.f ? 0.f : x;
}
__device__ __forceinline__ float relu_grad1(float y, float dy) {
    return y > 0.f ? dy : 0.f;
}

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y, bool vec) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n4 = n / 4;
        for (int64_t i = first; i < n4; i += stride) {
            float4 v = reinterpret_cast<const float4*>(x)[i];
            v = make_float4(relu1(v.x), relu1(v.y), relu1(v.z), relu1(v.w));
            reinterpret_cast<float4*>(y)[i] = v;
        }
        done = n4 * 4;
    }
    for (int64_t i = done + first; i < n; i += stride)
        y[i] = relu1(x[i]);
}

__global__ void relu_backward_kernel(int64_t n, const float* y, const float* dy, float* dx,
                                     bool vec) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n4 = n / 4;
        for (int64_t i = first; i < n4; i += stride) {
            const float4 a = reinterpret_cast<const float4*>(y)[i];
            const float4 g = reinterpret_cast<const float4*>(dy)[i];
            reinterpret_cast<float4*>(dx)[i] =
                make_float4(relu_grad1(a.x, g.x), relu_grad1(a.y, g.y), relu_grad1(a.z, g.z),
                            relu_grad1(a.w, g.w));
        }
        done = n4 * 4;
    }
    for (int64_t i = done + first; i < n; i += stride)
        dx[i] = relu_grad1(y[i], dy[i]);
}

bool aligned16(const void* p) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

int blocks_for(int64_t n) {
    return int(std::max<int64_t>(1, std::min(ceil_div(n / 4 + 1, kThreads), kMaxBlocks)));
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y, Stream stream) {
    GNET_CHECK(n >= 0, "gpu::relu_forward: negative size");
    if (n == 0) return;
    launch<relu_forward_kernel>(blocks_for(n), kThreads, 0, stream, n, x, y,
                                aligned16(x) && aligned16(y));
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx, Stream stream) {
    GNET_CHECK(n >= 0, "gpu::relu_backward: negative size");
    if (n == 0) return;
    launch<relu_backward_kernel>(blocks_for(n), kThreads, 0, stream, n, y, dy, dx,
                                 aligned16(y) && aligned16(dy) && aligned16(dx));
}

}  // namespace gnet::gpu
