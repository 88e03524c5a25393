// Winograd F(4x4, 3x3) convolution for the fast CPU backend: the 3x3, stride 1, pad 1 layers
// (most of ResNet18's FLOPs), forward, backward-data and backward-weight.
//
// The output is cut into 4x4 tiles; each tile reads a 6x6 input patch. With Lavin & Gray's
// matrices (interpolation points 0, +-1, +-2, inf):
//   forward          Y_t = A^T [ U ⊙ V_t ] A,   U = G g G^T (per oc, c),  V_t = B^T d_t B
//                    i.e. for each of the 36 points xi a GEMM  M[xi] (T, OC) = V[xi] (T, C) U[xi]
//                    (C, OC)
//   backward-data    the forward of dy with the flipped, transposed filter (3x3, pad 1 again)
//   backward-weight  dw = G^T dU G,  dU[xi] (OC, C) = sum_t (A dY_t A^T)[xi] V_t[xi]  (exact: the
//                    adjoint of the forward; output positions past the edge carry dy = 0)
// 36 multiplies per 16 outputs instead of 144: 4x fewer FLOPs in the GEMMs, paid for with the
// transforms and a little accuracy (the tests name the tolerance).
//
// Work split. Small filters (layers 1-2: transformed filters of at most 2.4 MB) run "fused": each
// thread takes whole units of a few tile rows and does everything for them (rows to an 8-channel
// blocked layout, input transform, the 36 GEMMs, output transform, epilogue, back to NCHW) in its
// own L2-sized buffers, with no barrier; backward-weight sums each thread's units into a private
// dU and adds the partials in thread order. Wide layers (3-4) go in three phases per chunk of
// tiles, each spread over all threads (input transform over tiles x 8-channel blocks, the GEMMs
// over points x 16-channel output panels, output transform), one group of output panels at a
// time so that at most 9.4 MB of transformed filters exist at once. Every output element is
// written by one thread and every sum runs in a fixed order, so results do not depend on
// scheduling (only, for backward-weight, on the thread count). Scratch belongs to the calling
// thread (and to each worker) and is reused between calls.
#pragma once

#include "kernels/conv2d.h"

namespace gnet::cpu_fast {

// What the forward adds after the convolution, per output element (n, oc, h, w):
//   y = [relu]( conv + bias[oc] + residual[n, oc, h, w] )   (each part optional)
struct ConvEpilogue {
    const float* bias = nullptr;      // (OC)
    const float* residual = nullptr;  // (N, OC, OH, OW)
    bool relu = false;
};

bool winograd_applies(const Conv2dParams& p);  // KH = KW = 3, stride 1, pad 1

// y (=) epi(conv(x, w)). transposed_flipped: w is stored as (C, OC, 3, 3) with the taps reversed
// (backward-data passes the forward weights unchanged this way).
void winograd_forward(const Conv2dParams& p, const float* x, const float* w,
                      bool transposed_flipped, const ConvEpilogue& epi, float* y);
void winograd_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                              Accum accum);

}  // namespace gnet::cpu_fast
