// Sigmoid CPU twin (double inside, stable for large |x|).
#include <cmath>

#include "kernels/sigmoid.h"

namespace gnet::cpu {

void sigmoid_forward(int64_t n, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        const double z = x[i];
        const double e = std::exp(-std::fabs(z));  // in (0, 1]
        y[i] = float(z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
    }
}

}  // namespace gnet::cpu
