// Elementwise add CPU twin.
#include "kernels/add.h"

namespace gnet::cpu {

void add_forward(int64_t n, const float* a, const float* b, float* y) {
    for (int64_t i = 0; i < n; ++i)
        y[i] = a[i] + b[i];
}

}  // namespace gnet::cpu
