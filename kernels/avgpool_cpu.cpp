// Global average pooling CPU twin (double accumulator).
#include <string>

#include "kernels/avgpool.h"
#include "kernels/error.h"

namespace gnet::cpu {

void avgpool_global_forward(int N, int C, int HW, const float* x, float* y) {
    GNET_CHECK(N > 0 && C > 0 && HW > 0, "avgpool_global: shape must be positive");
    for (int64_t nc = 0; nc < int64_t(N) * C; ++nc) {
        double s = 0.0;
        for (int i = 0; i < HW; ++i)
            s += x[nc * HW + i];
        y[nc] = float(s / HW);
    }
}

void avgpool_global_backward(int N, int C, int HW, const float* dy, float* dx) {
    GNET_CHECK(N > 0 && C > 0 && HW > 0, "avgpool_global: shape must be positive");
    for (int64_t nc = 0; nc < int64_t(N) * C; ++nc) {
        const float g = dy[nc] / float(HW);
        for (int i = 0; i < HW; ++i)
            dx[nc * HW + i] = g;
    }
}

}  // namespace gnet::cpu
