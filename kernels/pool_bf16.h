// pool_bf16: the pooling, input and elementwise steps of the mixed-precision path, channels-last.
//
//   maxpool2d_bf16_forward   y (N, OH, OW, C) = max over the K x K window of x (N, H, W, C), and
//                            argmax (N, OH, OW, C) = h*W + w of the winner in its image (int32).
//                            Padding never wins; ties go to the first maximum in row-major window
//                            order (strict >), a NaN wins (the last one): as maxpool2d.h.
//   maxpool2d_bf16_backward  dx (N, H, W, C) = bf16( sum of dy over the windows whose argmax is
//                            that input ), gathered in row-major output order (no atomics).
//   avgpool_bf16_forward     y (N, C) float = mean over H*W of x (N, H, W, C)   (into the fc layer)
//   avgpool_bf16_backward    dx (N, H, W, C) = bf16( dy (N, C) / (H*W) )
//   to_bf16_copy             y = bf16(x), n values (the float32 spectrogram into the network)
//   add_bf16                 y = bf16(a + b), n values (a block's two input-gradient paths)
// The max and the copies are exact (bf16 in, bf16 out); sums are float32, rounded once.
// CPU twin: pool_bf16_cpu.cpp; GPU twin: pool_bf16.cu, one thread per output element.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/maxpool2d.h"

namespace gnet {

namespace cpu {
void maxpool2d_bf16_forward(const Pool2dParams& p, const Bf16* x, Bf16* y, int32_t* argmax);
void maxpool2d_bf16_backward(const Pool2dParams& p, const Bf16* dy, const int32_t* argmax,
                             Bf16* dx);
void avgpool_bf16_forward(int N, int HW, int C, const Bf16* x, float* y);
void avgpool_bf16_backward(int N, int HW, int C, const float* dy, Bf16* dx);
void to_bf16_copy(int64_t n, const float* x, Bf16* y);
void add_bf16(int64_t n, const Bf16* a, const Bf16* b, Bf16* y);
}  // namespace cpu

namespace gpu {
void maxpool2d_bf16_forward(const Pool2dParams& p, const Bf16* x, Bf16* y, int32_t* argmax,
                            Stream stream);
void maxpool2d_bf16_backward(const Pool2dParams& p, const Bf16* dy, const int32_t* argmax, Bf16* dx,
                             Stream stream);
void avgpool_bf16_forward(int N, int HW, int C, const Bf16* x, float* y, Stream stream);
void avgpool_bf16_backward(int N, int HW, int C, const float* dy, Bf16* dx, Stream stream);
void to_bf16_copy(int64_t n, const float* x, Bf16* y, Stream stream);
void add_bf16(int64_t n, const Bf16* a, const Bf16* b, Bf16* y, Stream stream);
}  // namespace gpu

}  // namespace gnet
