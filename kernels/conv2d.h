// conv2d: 2-D convolution (cross-correlation, as PyTorch), no bias, float32, NCHW.
//
//   y  (N, OC, OH, OW) =  sum_{c,kh,kw} w(oc, c, kh, kw) * x(n, c, oh*s - pad + kh, ow*s - pad +
//   kw) dx (N, C, H, W)    =  transposed convolution of dy with w (overwritten) dw (OC, C, KH, KW)
//   =  sum_{n,oh,ow} dy(n, oc, oh, ow) * x(n, c, ...)   (Accum::Overwrite or Add)
// Zero padding `pad` on all four sides, the same `stride` on both axes.
// Saved for backward: nothing of its own; the caller keeps x (for dw) and w (for dx).
//
// Every pass is a GEMM:            M        N              K
//   forward          y  = w  * col(x)    OC       N*OH*OW        C*KH*KW
//   backward_data    dx = w^T * dy       C        N*H*W          OC*KH*KW   (gathered, per dx
//   element) backward_weight  dw = dy * col(x)^T  OC       C*KH*KW        N*OH*OW
//
// CPU twin (conv2d_cpu.cpp): im2col / col2im into a scratch matrix owned by the calling thread, one
// OpenBLAS sgemm per chunk of images, im2col/col2im split over images on std::threads. Safe to
// call from several threads at once (each caller has its own scratch).
// GPU twin (conv2d.cu): implicit GEMM (no col matrix in memory), 64x64 or 64x128 block tiles,
// BK 16, 256 threads with a 4x4 or 4x8 register tile each, double-buffered shared memory.
// backward_data gathers (no atomics), one GEMM per stride phase of dx so strided convs skip the
// structural zeros; backward_weight splits K over blocks into `workspace` and sums the slices in a
// fixed order (deterministic: the same inputs give bit-identical dw). Thread-safe: no state between
// calls.
#pragma once

#include <cstddef>

#include "kernels/common.h"

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;  // = cudaStream_t, as in nn/device.h

struct Conv2dParams {
    int N, C, H, W;   // input x (N, C, H, W)
    int OC, KH, KW;   // weight w (OC, C, KH, KW), no bias
    int stride, pad;  // same for both axes
    int OH, OW;       // output y (N, OC, OH, OW)

    // Fills OH/OW; throws gnet::Error for non-positive sizes or a kernel larger than the padded
    // input.
    static Conv2dParams make(int N, int C, int H, int W, int OC, int KH, int KW, int stride,
                             int pad);

    int64_t x_size() const { return int64_t(N) * C * H * W; }
    int64_t w_size() const { return int64_t(OC) * C * KH * KW; }
    int64_t y_size() const { return int64_t(N) * OC * OH * OW; }
    // Multiply-adds of one pass times two (the same for all three passes).
    double flops() const { return 2.0 * double(N) * OC * OH * OW * double(C) * KH * KW; }
};

namespace cpu {
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y /*=*/);
void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx /*=*/);
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum);
}  // namespace cpu

// Fast CPU backend (conv2d_cpu_fast.cpp, AVX2 + FMA; only when cpu_fast::available()): Winograd
// F(4x4, 3x3) for 3x3 stride-1 pad-1 layers, packed GEMM on a 6x16 micro-kernel for the rest,
// every pass spread over the cpu_fast worker pool; scratch belongs to the calling thread.
// Tested against cpu:: within named tolerances (tests/test_conv2d_fast.cpp).
namespace cpu_fast {
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y /*=*/);
void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx /*=*/);
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum);
// Inference with batch norm folded into (w, bias):
//   y (=) [relu](conv(x, w) + bias[oc] [+ residual])   bias (OC) or null, residual like y or null.
void conv2d_forward_fused(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                          const float* residual, bool relu, float* y /*=*/);
}  // namespace cpu_fast

namespace gpu {
// Device pointers; asynchronous on `stream`; no allocation, no host synchronisation.
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y /*=*/,
                    Stream stream);
void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx /*=*/,
                          Stream stream);
// Scratch for backward_weight's split-K partial sums (bytes; 0 when no split is used, then
// `workspace` may be nullptr). Depends only on p. A few MB for every ResNet18 layer at batch 32.
size_t conv2d_workspace_bytes(const Conv2dParams& p);
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum, void* workspace, Stream stream);
}  // namespace gpu

}  // namespace gnet
