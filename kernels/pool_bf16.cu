// pool_bf16 GPU twin (see pool_bf16.h): one thread per output element, grid-stride loops. The
// max-pool backward gathers: each input element walks the few windows that can hold it, in
// row-major output order, so the float sum matches the CPU twin's scatter term for term.
#include "kernels/pool_bf16.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <limits>

#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 8;

unsigned blocks_for(int64_t n) {
    return unsigned(std::max<int64_t>(1, std::min(ceil_div(n, kThreads), kMaxBlocks)));
}

__global__ void maxpool_bf16_forward_kernel(Pool2dParams p, const Bf16* x, Bf16* y,
                                            int32_t* argmax) {
    const int64_t total = int64_t(p.N) * p.OH * p.OW * p.C;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
        const int c = int(o % p.C);
        const int64_t pix = o / p.C;
        const int ow = int(pix % p.OW), oh = int((pix / p.OW) % p.OH);
        const int64_t n = pix / (int64_t(p.OW) * p.OH);
        float best = -INFINITY;
        int32_t at = -1;
        for (int kh = 0; kh < p.K; ++kh) {
            const int ih = oh * p.stride - p.pad + kh;
            if (ih < 0 || ih >= p.H) continue;
            for (int kw = 0; kw < p.K; ++kw) {
                const int iw = ow * p.stride - p.pad + kw;
                if (iw < 0 || iw >= p.W) continue;
                const float v = to_float(x[((n * p.H + ih) * p.W + iw) * p.C + c]);
                if (at < 0 || v > best || isnan(v)) {
                    best = v;
                    at = ih * p.W + iw;
                }
            }
        }
        y[o] = to_bf16(best);
        argmax[o] = at;
    }
}

// The first output index along one axis whose window covers input position i.
__device__ __forceinline__ int first_window(int i, int K, int stride, int pad) {
    const int t = i + pad - K + 1;
    return t <= 0 ? 0 : (t + stride - 1) / stride;
}

__global__ void maxpool_bf16_backward_kernel(Pool2dParams p, const Bf16* dy, const int32_t* argmax,
                                             Bf16* dx) {
    const int64_t total = int64_t(p.N) * p.H * p.W * p.C;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int c = int(i % p.C);
        const int64_t pix = i / p.C;
        const int w = int(pix % p.W), h = int((pix / p.W) % p.H);
        const int64_t n = pix / (int64_t(p.W) * p.H);
        const int32_t me = h * p.W + w;
        const int oh0 = first_window(h, p.K, p.stride, p.pad);
        const int oh1 = min(p.OH - 1, (h + p.pad) / p.stride);
        const int ow0 = first_window(w, p.K, p.stride, p.pad);
        const int ow1 = min(p.OW - 1, (w + p.pad) / p.stride);
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1; ++oh)
            for (int ow = ow0; ow <= ow1; ++ow) {
                const int64_t o = ((n * p.OH + oh) * p.OW + ow) * p.C + c;
                if (argmax[o] == me) acc += to_float(dy[o]);
            }
        dx[i] = to_bf16(acc);
    }
}

__global__ void avgpool_bf16_forward_kernel(int N, int HW, int C, const Bf16* x, float* y) {
    const int64_t total = int64_t(N) * C;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
        const int c = int(o % C);
        const int64_t n = o / C;
        float s = 0.0f;
        for (int i = 0; i < HW; ++i)
            s += to_float(x[(n * HW + i) * C + c]);
        y[o] = s / float(HW);
    }
}

__global__ void avgpool_bf16_backward_kernel(int N, int HW, int C, const float* dy, Bf16* dx) {
    const int64_t total = int64_t(N) * HW * C;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int c = int(i % C);
        const int64_t n = i / (int64_t(HW) * C);
        dx[i] = to_bf16(dy[n * C + c] / float(HW));
    }
}

__global__ void to_bf16_kernel(int64_t n, const float* x, Bf16* y) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = to_bf16(x[i]);
}

__global__ void add_bf16_kernel(int64_t n, const Bf16* a, const Bf16* b, Bf16* y) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = to_bf16(to_float(a[i]) + to_float(b[i]));
}

void check(const Pool2dParams& p) {
    const Pool2dParams q = Pool2dParams::make(p.N, p.C, p.H, p.W, p.K, p.stride, p.pad);
    GNET_CHECK(q.OH == p.OH && q.OW == p.OW,
               "gpu::maxpool2d_bf16: OH/OW disagree with the input; build the params with make()");
    GNET_CHECK(int64_t(p.H) * p.W < int64_t(std::numeric_limits<int32_t>::max()),
               "gpu::maxpool2d_bf16: input plane too large for int32 argmax");
}

}  // namespace

void maxpool2d_bf16_forward(const Pool2dParams& p, const Bf16* x, Bf16* y, int32_t* argmax,
                            Stream stream) {
    check(p);
    launch<maxpool_bf16_forward_kernel>(dim3(blocks_for(int64_t(p.N) * p.OH * p.OW * p.C)),
                                        dim3(kThreads), 0, stream, p, x, y, argmax);
}

void maxpool2d_bf16_backward(const Pool2dParams& p, const Bf16* dy, const int32_t* argmax, Bf16* dx,
                             Stream stream) {
    check(p);
    launch<maxpool_bf16_backward_kernel>(dim3(blocks_for(int64_t(p.N) * p.H * p.W * p.C)),
                                         dim3(kThreads), 0, stream, p, dy, argmax, dx);
}

void avgpool_bf16_forward(int N, int HW, int C, const Bf16* x, float* y, Stream stream) {
    launch<avgpool_bf16_forward_kernel>(dim3(blocks_for(int64_t(N) * C)), dim3(kThreads), 0, stream,
                                        N, HW, C, x, y);
}

void avgpool_bf16_backward(int N, int HW, int C, const float* dy, Bf16* dx, Stream stream) {
    launch<avgpool_bf16_backward_kernel>(dim3(blocks_for(int64_t(N) * HW * C)), dim3(kThreads), 0,
                                         stream, N, HW, C, dy, dx);
}

void to_bf16_copy(int64_t n, const float* x, Bf16* y, Stream stream) {
    if (n == 0) return;
    launch<to_bf16_kernel>(dim3(blocks_for(n)), dim3(kThreads), 0, stream, n, x, y);
}

void add_bf16(int64_t n, const Bf16* a, const Bf16* b, Bf16* y, Stream stream) {
    if (n == 0) return;
    launch<add_bf16_kernel>(dim3(blocks_for(n)), dim3(kThreads), 0, stream, n, a, b, y);
}

}  // namespace gnet::gpu
