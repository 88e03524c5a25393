// Global average pooling: x (N, C, HW) -> y (N, C), y = mean over HW (=).
// Backward: dx (N, C, HW) = dy / HW broadcast over the plane (=). Nothing is saved.
// GPU forward: one warp per (n, c), lanes stride over HW, fixed shuffle tree (deterministic);
// backward: one thread per dx element.
#pragma once

#include <cstdint>

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

namespace cpu {
void avgpool_global_forward(int N, int C, int HW, const float* x, float* y);
void avgpool_global_backward(int N, int C, int HW, const float* dy, float* dx);
}  // namespace cpu

namespace gpu {
void avgpool_global_forward(int N, int C, int HW, const float* x, float* y, Stream stream);
void avgpool_global_backward(int N, int C, int HW, const float* dy, float* dx, Stream stream);
}  // namespace gpu

}  // namespace gnet
