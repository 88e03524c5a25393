// Elementwise sum of two flat arrays of n floats: y = a + b (=). y may alias a or b.
// Backward is the identity for both inputs (no kernel needed).
// GPU: one thread per 4 elements (float4 when all pointers are 16-byte aligned).
#pragma once

#include <cstdint>

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

namespace cpu {
void add_forward(int64_t n, const float* a, const float* b, float* y);
}  // namespace cpu

// Fast CPU backend (add_cpu_fast.cpp): contiguous ranges on the worker pool.
namespace cpu_fast {
void add_forward(int64_t n, const float* a, const float* b, float* y);
}  // namespace cpu_fast

namespace gpu {
void add_forward(int64_t n, const float* a, const float* b, float* y, Stream stream);
}  // namespace gpu

}  // namespace gnet
