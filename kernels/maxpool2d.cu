// Max pooling GPU twin.
// Forward: one thread per output element, window walked in row-major order (strict >, NaN wins).
// Backward: one thread per INPUT element gathers dy over the output windows that cover it and
// chose it (argmax), in row-major output order: no atomics, deterministic, and the same additions
// in the same order as the CPU twin's scatter.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/maxpool2d.h"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 8;

__global__ void maxpool2d_forward_kernel(Pool2dParams p, const float* x, float* y,
                                         int32_t* argmax) {
    const int64_t total = int64_t(p.N) * p.C * p.OH * p.OW;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
        const int ow = int(o % p.OW);
        const int oh = int((o / p.OW) % p.OH);
        const int64_t plane = o / (int64_t(p.OH) * p.OW);
        const float* xp = x + plane * p.H * p.W;
        float best = -INFINITY;
        int32_t best_i = -1;
        const int h0 = oh * p.stride - p.pad, w0 = ow * p.stride - p.pad;
        for (int kh = 0; kh < p.K; ++kh) {
            const int h = h0 + kh;
            if (h < 0 || h >= p.H) continue;
            for (int kw = 0; kw < p.K; ++kw) {
                const int w = w0 + kw;
                if (w < 0 || w >= p.W) continue;
                const float v = xp[h * p.W + w];
                if (best_i < 0 || v > best || isnan(v)) {
                    best = v;
                    best_i = h * p.W + w;
                }
            }
        }
        y[o] = best;
        argmax[o] = best_i;
    }
}

// First output index along one axis whose window covers input position i, and the last.
__device__ __forceinline__ int first_window(int i, int K, int stride, int pad) {
    const int t = i + pad - K + 1;  // window o covers i when o*stride >= t
    return t <= 0 ? 0 : (t + stride - 1) / stride;
}

__global__ void maxpool2d_backward_kernel(Pool2dParams p, const float* dy, const int32_t* argmax,
                                          float* dx) {
    const int64_t total = int64_t(p.N) * p.C * p.H * p.W;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int w = int(i % p.W);
        const int h = int((i / p.W) % p.H);
        const int64_t plane = i / (int64_t(p.H) * p.W);
        const int32_t me = h * p.W + w;
        const int oh0 = first_window(h, p.K, p.stride, p.pad);
        const int oh1 = min(p.OH - 1, (h + p.pad) / p.stride);
        const int ow0 = first_window(w, p.K, p.stride, p.pad);
        const int ow1 = min(p.OW - 1, (w + p.pad) / p.stride);
        const int64_t out_base = plane * p.OH * p.OW;
        float acc = 0.f;
        for (int oh = oh0; oh <= oh1; ++oh)
            for (int ow = ow0; ow <= ow1; ++ow) {
                const int64_t o = out_base + int64_t(oh) * p.OW + ow;
                if (argmax[o] == me) acc += dy[o];
            }
        dx[i] = acc;
    }
}

void check(const Pool2dParams& p) {
    const Pool2dParams q = Pool2dParams::make(p.N, p.C, p.H, p.W, p.K, p.stride, p.pad);
    GNET_CHECK(q.OH == p.OH && q.OW == p.OW,
               "gpu::maxpool2d: OH/OW disagree with the input; build the params with make()");
    GNET_CHECK(int64_t(p.H) * p.W < int64_t(std::numeric_limits<int32_t>::max()),
               "gpu::maxpool2d: input plane too large for int32 argmax");
}

int blocks_for(int64_t n) {
    return int(std::max<int64_t>(1, std::min(ceil_div(n, kThreads), kMaxBlocks)));
}

}  // namespace

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                       Stream stream) {
    check(p);
    const int64_t total = int64_t(p.N) * p.C * p.OH * p.OW;
    launch<maxpool2d_forward_kernel>(blocks_for(total), kThreads, 0, stream, p, x, y, argmax);
}

void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                        Stream stream) {
    check(p);
    const int64_t total = int64_t(p.N) * p.C * p.H * p.W;
    launch<maxpool2d_backward_kernel>(blocks_for(total), kThreads, 0, stream, p, dy, argmax, dx);
}

}  // namespace gnet::gpu
