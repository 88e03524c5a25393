// ReLU over a flat array of n floats (any layout).
// Forward y = max(x, 0) (=). Saved for backward: the output y (its sign is the mask).
// Backward dx = y > 0 ? dy : 0 (=). GPU: one thread per 4 elements (float4 when aligned).
#pragma once

#include <cstdint>

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

namespace cpu {
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);
}  // namespace cpu

namespace gpu {
void relu_forward(int64_t n, const float* x, float* y, Stream stream);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, Stream stream);
}  // namespace gpu

}  // namespace gnet
