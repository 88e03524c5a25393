// Global average pooling GPU twin.
// Forward: one warp per (n, c) plane; lanes stride over HW, then a fixed shuffle tree.
// Backward: one thread per dx element, dx = dy / HW.
#include <algorithm>
#include <cstdint>

#include "kernels/avgpool.h"
#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;  // 8 warps = 8 planes per block
constexpr int64_t kMaxBlocks = 65535 * 8;

__global__ void avgpool_global_forward_kernel(int64_t planes, int HW, const float* x, float* y) {
    const int lane = threadIdx.x & 31;
    const int64_t warps_total = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t nc = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; nc < planes;
         nc += warps_total) {
        const float* xp = x + nc * HW;
        float s = 0.f;
        for (int i = lane; i < HW; i += 32)
            s += xp[i];
        for (int off = 16; off > 0; off >>= 1)
            s += __shfl_down_sync(0xffffffffu, s, off);
        if (lane == 0) y[nc] = s / float(HW);
    }
}

__global__ void avgpool_global_backward_kernel(int64_t total, int HW, const float* dy, float* dx) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride)
        dx[i] = dy[i / HW] / float(HW);
}

}  // namespace

void avgpool_global_forward(int N, int C, int HW, const float* x, float* y, Stream stream) {
    GNET_CHECK(N > 0 && C > 0 && HW > 0, "gpu::avgpool_global: shape must be positive");
    const int64_t planes = int64_t(N) * C;
    const int blocks = int(std::min(ceil_div(planes, kThreads / 32), kMaxBlocks));
    launch<avgpool_global_forward_kernel>(blocks, kThreads, 0, stream, planes, HW, x, y);
}

void avgpool_global_backward(int N, int C, int HW, const float* dy, float* dx, Stream stream) {
    GNET_CHECK(N > 0 && C > 0 && HW > 0, "gpu::avgpool_global: shape must be positive");
    const int64_t total = int64_t(N) * C * HW;
    const int blocks = int(std::min(ceil_div(total, kThreads), kMaxBlocks));
    launch<avgpool_global_backward_kernel>(blocks, kThreads, 0, stream, total, HW, dy, dx);
}

}  // namespace gnet::gpu
