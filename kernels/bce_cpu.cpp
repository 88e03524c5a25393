// BCE-with-logits CPU twin (double inside).
#include <algorithm>
#include <cmath>

#include "kernels/bce.h"
#include "kernels/error.h"

namespace gnet::cpu {

void bce_logits_forward_backward(int N, int G, const float* logits, const float* targets,
                                 const float* pos_weight, float* loss, float* dlogits) {
    GNET_CHECK(N > 0 && G > 0, "bce_logits: shape must be positive");
    const double inv_count = 1.0 / (double(N) * G);
    double sum = 0.0;
    for (int n = 0; n < N; ++n) {
        for (int g = 0; g < G; ++g) {
            const int64_t i = int64_t(n) * G + g;
            const double z = logits[i], t = targets[i];
            const double lw = pos_weight ? 1.0 + (double(pos_weight[g]) - 1.0) * t : 1.0;
            const double e = std::exp(-std::fabs(z));
            sum += (1.0 - t) * z + lw * (std::log1p(e) + std::max(-z, 0.0));
            if (dlogits) {
                const double sig_neg = z >= 0.0 ? e / (1.0 + e) : 1.0 / (1.0 + e);  // sigmoid(-z)
                dlogits[i] = float(((1.0 - t) - lw * sig_neg) * inv_count);
            }
        }
    }
    *loss = float(sum * inv_count);
}

}  // namespace gnet::cpu
