#include "train/mixup.h"

#include <algorithm>
#include <random>

#include "kernels/error.h"
#include "train/loader.h"

namespace gnet {

MixupDraw draw_mixup(int n, float alpha, uint64_t seed) {
    GNET_CHECK(n >= 1, "mixup: empty batch");
    GNET_CHECK(alpha > 0, "mixup: alpha must be positive");
    std::mt19937_64 rng(seed);
    // Beta(a, a) = G1 / (G1 + G2) with G1, G2 ~ Gamma(a, 1).
    std::gamma_distribution<double> gamma(alpha, 1.0);
    const double g1 = gamma(rng), g2 = gamma(rng);
    double lambda = g1 + g2 > 0 ? g1 / (g1 + g2) : 0.5;
    lambda = std::max(lambda, 1.0 - lambda);
    MixupDraw d;
    d.lambda = float(lambda);
    d.partner = shuffled_order(n, rng(), 0);
    return d;
}

void mixup_batch(int n, int64_t sample_floats, int G, const float* x, const float* y,
                 const MixupDraw& draw, float* x_out, float* y_out) {
    GNET_CHECK(int(draw.partner.size()) == n, "mixup: partner list does not match the batch");
    const float a = draw.lambda, b = 1.f - draw.lambda;
    for (int i = 0; i < n; ++i) {
        const int p = draw.partner[size_t(i)];
        GNET_CHECK(p >= 0 && p < n, "mixup: partner out of range");
        const float* xi = x + int64_t(i) * sample_floats;
        const float* xp = x + int64_t(p) * sample_floats;
        float* xo = x_out + int64_t(i) * sample_floats;
        for (int64_t k = 0; k < sample_floats; ++k)
            xo[k] = a * xi[k] + b * xp[k];
        for (int g = 0; g < G; ++g)
            y_out[int64_t(i) * G + g] = a * y[int64_t(i) * G + g] + b * y[int64_t(p) * G + g];
    }
}

}  // namespace gnet
