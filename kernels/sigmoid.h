// Logistic sigmoid over a flat array of n floats: y = 1 / (1 + exp(-x)) (=), computed in the
// stable form (exp of a non-positive number only). Used for predictions; training uses the
// fused BCE-with-logits, so there is no backward. GPU: one thread per element, grid-stride.
#pragma once

#include <cstdint>

#include "kernels/common.h"

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

namespace cpu {
void sigmoid_forward(int64_t n, const float* x, float* y);
}  // namespace cpu

namespace gpu {
void sigmoid_forward(int64_t n, const float* x, float* y, Stream stream);
}  // namespace gpu

}  // namespace gnet
