// batchnorm_bf16 CPU twin: the specification (batchnorm_bf16.h) as plain loops, double sums.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/batchnorm_bf16.h"

namespace gnet::cpu {

void bn_bf16_finalize(const BnBf16Params& p, const float* sum, const float* sum_sq, float* mean,
                      float* invstd, float* running_mean, float* running_var) {
    const double M = double(p.M);
    for (int c = 0; c < p.C; ++c) {
        const double mu = double(sum[c]) / M;
        const double var = std::max(double(sum_sq[c]) / M - mu * mu, 0.0);
        mean[c] = float(mu);
        invstd[c] = float(1.0 / std::sqrt(var + double(p.eps)));
        if (running_mean) {
            const double m = p.momentum, unbiased = p.M > 1 ? var * M / (M - 1) : var;
            running_mean[c] = float((1.0 - m) * running_mean[c] + m * mu);
            running_var[c] = float((1.0 - m) * running_var[c] + m * unbiased);
        }
    }
}

void bn_bf16_eval_stats(const BnBf16Params& p, const float* running_mean, const float* running_var,
                        float* mean, float* invstd) {
    for (int c = 0; c < p.C; ++c) {
        mean[c] = running_mean[c];
        invstd[c] = float(1.0 / std::sqrt(double(running_var[c]) + double(p.eps)));
    }
}

void bn_bf16_apply(const BnBf16Params& p, BnEpilogue epi, const Bf16* y, const float* mean,
                   const float* invstd, const float* gamma, const float* beta, const Bf16* residual,
                   Bf16* z) {
    for (int64_t r = 0; r < p.M; ++r)
        for (int c = 0; c < p.C; ++c) {
            const int64_t i = r * p.C + c;
            float v = (to_float(y[i]) - mean[c]) * invstd[c] * gamma[c] + beta[c];
            if (epi == BnEpilogue::AddRelu) v += to_float(residual[i]);
            if (epi != BnEpilogue::None) v = v > 0.0f ? v : 0.0f;
            z[i] = to_bf16(v);
        }
}

void bn_bf16_backward(const BnBf16Params& p, BnEpilogue epi, const Bf16* dz, const Bf16* z,
                      const Bf16* y, const float* mean, const float* invstd, const float* gamma,
                      Bf16* dy, Bf16* dresidual, float* dgamma, float* dbeta) {
    auto g_at = [&](int64_t i) {
        const float d = to_float(dz[i]);
        return epi == BnEpilogue::None || to_float(z[i]) > 0.0f ? d : 0.0f;
    };
    std::vector<double> sum_g(size_t(p.C), 0.0), sum_gx(size_t(p.C), 0.0);
    for (int64_t r = 0; r < p.M; ++r)
        for (int c = 0; c < p.C; ++c) {
            const int64_t i = r * p.C + c;
            const float xhat = (to_float(y[i]) - mean[c]) * invstd[c];
            const float g = g_at(i);
            sum_g[size_t(c)] += g;
            sum_gx[size_t(c)] += double(g) * xhat;
        }
    const float inv_m = float(1.0 / double(p.M));
    for (int64_t r = 0; r < p.M; ++r)
        for (int c = 0; c < p.C; ++c) {
            const int64_t i = r * p.C + c;
            const float xhat = (to_float(y[i]) - mean[c]) * invstd[c];
            const float g = g_at(i);
            const float sg = float(sum_g[size_t(c)]), sgx = float(sum_gx[size_t(c)]);
            dy[i] = to_bf16(gamma[c] * invstd[c] * (g - (sg + xhat * sgx) * inv_m));
            if (epi == BnEpilogue::AddRelu) dresidual[i] = to_bf16(g);
        }
    for (int c = 0; c < p.C; ++c) {
        dbeta[c] += float(sum_g[size_t(c)]);
        dgamma[c] += float(sum_gx[size_t(c)]);
    }
}

}  // namespace gnet::cpu
