// BatchNorm2d CPU twin: the specification. Plain loops, double accumulators, two-pass variance.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/error.h"

namespace gnet {

void batchnorm_check(const BatchNormParams& p, BnEpilogue epi, const float* residual,
                     bool training) {
    GNET_CHECK(p.N > 0 && p.C > 0 && p.HW > 0,
               "batchnorm: shape must be positive, got N=" + std::to_string(p.N) +
                   " C=" + std::to_string(p.C) + " HW=" + std::to_string(p.HW));
    GNET_CHECK(p.eps > 0.f, "batchnorm: eps must be positive");
    GNET_CHECK(!training || int64_t(p.N) * p.HW > 1,
               "batchnorm: training needs more than one value per channel (N*HW = " +
                   std::to_string(int64_t(p.N) * p.HW) + ")");
    GNET_CHECK((epi == BnEpilogue::AddRelu) == (residual != nullptr),
               "batchnorm: a residual is given exactly for the AddRelu epilogue");
}

namespace {

inline double apply_epilogue(BnEpilogue epi, double v, const float* residual, int64_t i) {
    if (epi == BnEpilogue::AddRelu) v += residual[i];
    if (epi != BnEpilogue::None && v < 0.0) v = 0.0;  // NaN passes through
    return v;
}

}  // namespace

namespace cpu {

void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd) {
    batchnorm_check(p, epi, residual, true);
    const int64_t M = int64_t(p.N) * p.HW;
    for (int c = 0; c < p.C; ++c) {
        double sum = 0.0;
        for (int n = 0; n < p.N; ++n) {
            const float* xp = x + (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i)
                sum += xp[i];
        }
        const double mean = sum / double(M);
        double sq = 0.0;
        for (int n = 0; n < p.N; ++n) {
            const float* xp = x + (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i)
                sq += (xp[i] - mean) * (xp[i] - mean);
        }
        const double var = sq / double(M);  // biased: what normalises
        const double invstd = 1.0 / std::sqrt(var + double(p.eps));
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i) {
                double v = (x[base + i] - mean) * invstd * gamma[c] + beta[c];
                y[base + i] = float(apply_epilogue(epi, v, residual, base + i));
            }
        }
        const double m = p.momentum;
        const double unbiased = var * double(M) / double(M - 1);
        running_mean[c] = float((1.0 - m) * running_mean[c] + m * mean);
        running_var[c] = float((1.0 - m) * running_var[c] + m * unbiased);
        save_mean[c] = float(mean);
        save_invstd[c] = float(invstd);
    }
}

void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y) {
    batchnorm_check(p, epi, residual, false);
    for (int n = 0; n < p.N; ++n) {
        for (int c = 0; c < p.C; ++c) {
            const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(p.eps));
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i) {
                double v = (x[base + i] - double(running_mean[c])) * invstd * gamma[c] + beta[c];
                y[base + i] = float(apply_epilogue(epi, v, residual, base + i));
            }
        }
    }
}

void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta) {
    batchnorm_check(p, epi, epi == BnEpilogue::AddRelu ? dresidual : nullptr, true);
    GNET_CHECK(epi == BnEpilogue::AddRelu || dresidual == nullptr,
               "batchnorm_backward: dresidual is only written for the AddRelu epilogue");
    const int64_t M = int64_t(p.N) * p.HW;
    // dz = dLoss/d bn(x): dy where the epilogue's ReLU passed the value (y > 0), else 0.
    auto dz_at = [&](int64_t i) -> double {
        if (epi == BnEpilogue::None) return dy[i];
        return y[i] > 0.f ? double(dy[i]) : 0.0;
    };
    for (int c = 0; c < p.C; ++c) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dz = 0.0, sum_dz_xhat = 0.0;
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i) {
                const double dz = dz_at(base + i);
                sum_dz += dz;
                sum_dz_xhat += dz * (x[base + i] - mean) * invstd;
            }
        }
        const double mean_dz = sum_dz / double(M), mean_dz_xhat = sum_dz_xhat / double(M);
        const double k = double(gamma[c]) * invstd;
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            for (int i = 0; i < p.HW; ++i) {
                const double dz = dz_at(base + i);
                const double xhat = (x[base + i] - mean) * invstd;
                dx[base + i] = float(k * (dz - mean_dz - xhat * mean_dz_xhat));
                if (dresidual) dresidual[base + i] = float(dz);
            }
        }
        dgamma[c] = float(dgamma[c] + sum_dz_xhat);
        dbeta[c] = float(dbeta[c] + sum_dz);
    }
}

}  // namespace cpu
}  // namespace gnet
