// conv2d_bf16: the mixed-precision convolution (bf16 operands, float32 accumulation),
// channels-last.
//
// Layouts (Conv2dParams as conv2d.h; no bias, zero padding, one stride):
//   x, dx   (N, H, W, C)       bf16   NHWC
//   y, dy   (N, OH, OW, OC)    bf16   NHWC
//   w       (OC, KH, KW, C)    bf16   "OHWI": each filter's taps with the channels contiguous
//   wt      (C, KH, KW, OC)    bf16   "IHWO": the same weights for backward_data (conv2d_bf16_ihwo)
//   dw      (OC, KH, KW, C)    float  master-weight gradient (Accum::Overwrite or Add)
//
// clang-format off
//   forward          y[n,oh,ow,oc]  = bf16( sum_{kh,kw,c} x[n, oh*s-p+kh, ow*s-p+kw, c] w[oc,kh,kw,c] )
//   backward_data    dx[n,h,w,c]    = bf16( sum_{oc,kh,kw} dy[n,oh,ow,oc] w[oc,kh,kw,c] ),
//                                     h = oh*s-p+kh, w = ow*s-p+kw
//   backward_weight  dw[oc,kh,kw,c] (=|+=) sum_{n,oh,ow} dy[n,oh,ow,oc] x[n, oh*s-p+kh, ow*s-p+kw, c]
// clang-format on
// Every product is exact in float32; sums are float32; each bf16 output is its float32 sum rounded
// to nearest even once. forward can also return per-channel batch-norm statistics of the float32
// outputs (before rounding): sum and sum of squares over N*OH*OW, reduced in a fixed order.
//
// As GEMMs (M x N, K):        M            N            K
//   forward                  N*OH*OW      OC           KH*KW*C     A = x gathered, B = w
//   backward_data            N*H*W        C            KH*KW*OC    A = dy gathered, B = wt
//   backward_weight          OC           KH*KW*C      N*OH*OW     A = dy^T, B = x gathered
//
// CPU twin (conv2d_bf16_cpu.cpp): the plain loops above, float accumulation; the specification.
// GPU twin (conv2d_bf16.cu): implicit GEMM on tensor cores (mma.sync m16n8k16 bf16, ldmatrix,
// a 3-stage cp.async pipeline; kernels/mma.cuh), 64x64 block tiles of 4 warps; channel counts
// that are multiples of 8 load 16-byte vectors, others element by element. backward_weight splits
// K into slices summed in a fixed order (deterministic), like the float32 kernel (conv2d.h).
// ResNet18's 1-channel stem (C 1, OC 64, 7x7/2, pad 3) runs forward as a direct convolution of
// its own (a GEMM with K = 49 would waste a third of its K steps and gather element by element).
#pragma once

#include <cstddef>

#include "kernels/bf16.h"
#include "kernels/conv2d.h"

namespace gnet {

// Batch-norm statistics of a forward's float32 output, per output channel: sum[OC], sum_sq[OC].
struct ChannelStats {
    float* sum;
    float* sum_sq;
};

namespace cpu {
void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y /*=*/,
                         ChannelStats* stats /*= or null*/);
void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt,
                               Bf16* dx /*=*/);
void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum);
// wt (C, KH, KW, OC) from w (OC, KH, KW, C).
void conv2d_bf16_ihwo(const Conv2dParams& p, const Bf16* w, Bf16* wt /*=*/);
}  // namespace cpu

// Fast CPU backend (conv2d_bf16_cpu_fast.cpp; only when cpu_fast::available()): the same results
// through the float32 fast convolutions on exactly converted operands (summation order differs:
// Winograd for 3x3 stride-1 layers), each output rounded once; what `--precision bf16` runs on a
// CPU. Tested against cpu:: in tests/test_conv2d_bf16_fast.cpp.
namespace cpu_fast {
void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y /*=*/,
                         ChannelStats* stats /*= or null*/);
void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt,
                               Bf16* dx /*=*/);
void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum);
}  // namespace cpu_fast

namespace gpu {
// Device pointers; asynchronous on `stream`; no allocation, no host synchronisation. They need
// an sm_80 or later GPU (or the emulated device); gpu::bf16_supported() says whether this one is.
bool bf16_supported();

// Scratch of forward (for the statistics' per-tile partial sums) and backward_weight (split-K
// slices), bytes; depends only on p (and whether statistics are wanted).
size_t conv2d_bf16_forward_workspace_bytes(const Conv2dParams& p, bool stats);
size_t conv2d_bf16_backward_weight_workspace_bytes(const Conv2dParams& p);

void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y /*=*/,
                         ChannelStats* stats /*= or null*/, void* workspace, Stream stream);
void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt,
                               Bf16* dx /*=*/, Stream stream);
void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum, void* workspace, Stream stream);
void conv2d_bf16_ihwo(const Conv2dParams& p, const Bf16* w, Bf16* wt /*=*/, Stream stream);
}  // namespace gpu

}  // namespace gnet
