// Sigmoid GPU twin: one thread per element, grid-stride, stable form (exp of -|x| only).
#include <algorithm>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/sigmoid.h"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 4;

__global__ void sigmoid_forward_kernel(int64_t n, const float* x, float* y) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float z = x[i];
        const float e = expf(-fabsf(z));
        y[i] = z >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
    }
}

}  // namespace

void sigmoid_forward(int64_t n, const float* x, float* y, Stream stream) {
    GNET_CHECK(n >= 0, "gpu::sigmoid_forward: negative size");
    if (n == 0) return;
    const int blocks = int(std::min(ceil_div(n, kThreads), kMaxBlocks));
    launch<sigmoid_forward_kernel>(blocks, kThreads, 0, stream, n, x, y);
}

}  // namespace gnet::gpu
