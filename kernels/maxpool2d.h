// 2-D max pooling, K x K window, same stride and padding on both axes, NCHW.
// Forward: y (N, C, OH, OW) = ; argmax (N, C, OH, OW) = index h*W + w of the winner inside its
// input plane (saved for backward). Padding counts as -inf, so a window's winner is always a real
// input. Ties: the first maximum in row-major window order wins (strict >, as PyTorch); a NaN wins.
// Backward: dx (N, C, H, W) = sum of dy over the windows whose argmax is that input. The GPU
// GATHERS (one thread per input element walks the few windows that cover it, in row-major output
// order) instead of scattering, so it needs no atomics and is deterministic; the CPU scatters in
// the same row-major output order, so both add the same terms in the same order.
// GPU forward: one thread per output element.
#pragma once

#include <cstdint>

#include "kernels/common.h"

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

struct Pool2dParams {
    int N, C, H, W;      // x (N, C, H, W)
    int K, stride, pad;  // window K x K
    int OH, OW;          // y (N, C, OH, OW)
    // Checks the arguments (an Error otherwise: pad <= K/2, as PyTorch asks) and fills OH, OW.
    static Pool2dParams make(int N, int C, int H, int W, int K, int stride, int pad);
};

namespace cpu {
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx);
}  // namespace cpu

// Fast CPU backend (maxpool2d_cpu_fast.cpp): the reference's loops (bit-identical), planes on
// the worker pool, no bounds checks inside the input.
namespace cpu_fast {
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx);
}  // namespace cpu_fast

namespace gpu {
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                       Stream stream);
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                        Stream stream);
}  // namespace gpu

}  // namespace gnet
