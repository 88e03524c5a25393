// ReLU CPU twin.
#include "kernels/relu.h"

namespace gnet::cpu {

void relu_forward(int64_t n, const float* x, float* y) {
    // NaN passes through (x < 0 is false for NaN), as in PyTorch.
    for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] < 0.f ? 0.f : x[i];
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
    for (int64_t i = 0; i < n; ++i)
        dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace gnet::cpu
