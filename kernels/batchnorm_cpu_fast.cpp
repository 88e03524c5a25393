// BatchNorm2d, fast CPU backend (see batchnorm.h): the reference's arithmetic (two-pass
// variance, statistics accumulated in double) with AVX2 partial sums per row and the channels
// spread over the worker pool (each channel's N*HW values are L2-resident between the passes).
#include <immintrin.h>

#include <cmath>

#include "kernels/batchnorm.h"
#include "kernels/cpu_parallel.h"
#include "kernels/error.h"

namespace gnet::cpu_fast {
namespace {

// Horizontal sum of 8 lanes, in double.
inline double hsum(__m256 v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    return ((double(t[0]) + t[1]) + (double(t[2]) + t[3])) +
           ((double(t[4]) + t[5]) + (double(t[6]) + t[7]));
}

double row_sum(const float* x, int n) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    double s = hsum(_mm256_add_ps(a, b));
    for (; i < n; ++i)
        s += x[i];
    return s;
}

double row_sq_dev(const float* x, int n, float mean) {
    const __m256 m = _mm256_set1_ps(mean);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), m);
        a = _mm256_fmadd_ps(d0, d0, a);
        b = _mm256_fmadd_ps(d1, d1, b);
    }
    double s = hsum(_mm256_add_ps(a, b));
    for (; i < n; ++i)
        s += double(x[i] - mean) * double(x[i] - mean);
    return s;
}

// y = epi(x * scale + shift) over one row.
void normalise_row(BnEpilogue epi, const float* x, const float* res, float scale, float shift,
                   int n, float* y) {
    if (epi == BnEpilogue::None) {
        for (int i = 0; i < n; ++i)
            y[i] = x[i] * scale + shift;
    } else if (epi == BnEpilogue::Relu) {
        for (int i = 0; i < n; ++i) {
            const float v = x[i] * scale + shift;
            y[i] = v < 0.f ? 0.f : v;
        }
    } else {
        for (int i = 0; i < n; ++i) {
            const float v = x[i] * scale + shift + res[i];
            y[i] = v < 0.f ? 0.f : v;
        }
    }
}

}  // namespace

void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd) {
    batchnorm_check(p, epi, residual, true);
    const int64_t M = int64_t(p.N) * p.HW;
    parallel_for_each(p.C, [&](int64_t c) {
        double sum = 0.0;
        for (int n = 0; n < p.N; ++n)
            sum += row_sum(x + (int64_t(n) * p.C + c) * p.HW, p.HW);
        const double mean = sum / double(M);
        double sq = 0.0;
        for (int n = 0; n < p.N; ++n)
            sq += row_sq_dev(x + (int64_t(n) * p.C + c) * p.HW, p.HW, float(mean));
        const double var = sq / double(M);
        const double invstd = 1.0 / std::sqrt(var + double(p.eps));
        const float scale = float(invstd * gamma[c]);
        const float shift = float(beta[c] - mean * invstd * gamma[c]);
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            normalise_row(epi, x + base, residual ? residual + base : nullptr, scale, shift, p.HW,
                          y + base);
        }
        const double m = p.momentum;
        const double unbiased = var * double(M) / double(M - 1);
        running_mean[c] = float((1.0 - m) * running_mean[c] + m * mean);
        running_var[c] = float((1.0 - m) * running_var[c] + m * unbiased);
        save_mean[c] = float(mean);
        save_invstd[c] = float(invstd);
    });
}

void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y) {
    batchnorm_check(p, epi, residual, false);
    parallel_for_each(int64_t(p.N) * p.C, [&](int64_t row) {
        const int64_t c = row % p.C, base = row * p.HW;
        const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(p.eps));
        const float scale = float(invstd * gamma[c]);
        const float shift = float(beta[c] - double(running_mean[c]) * invstd * gamma[c]);
        normalise_row(epi, x + base, residual ? residual + base : nullptr, scale, shift, p.HW,
                      y + base);
    });
}

void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta) {
    batchnorm_check(p, epi, epi == BnEpilogue::AddRelu ? dresidual : nullptr, true);
    GNET_CHECK(epi == BnEpilogue::AddRelu || dresidual == nullptr,
               "batchnorm_backward: dresidual is only written for the AddRelu epilogue");
    const int64_t M = int64_t(p.N) * p.HW;
    const bool masked = epi != BnEpilogue::None;
    parallel_for_each(p.C, [&](int64_t c) {
        const float mean = save_mean[c], invstd = save_invstd[c];
        const __m256 vmean = _mm256_set1_ps(mean), zero = _mm256_setzero_ps();
        double sum_dz = 0.0, sum_dz_xc = 0.0;  // sum dz, sum dz * (x - mean)
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            const float *xr = x + base, *yr = y + base, *dyr = dy + base;
            __m256 s0 = zero, s1 = zero;
            int i = 0;
            for (; i + 8 <= p.HW; i += 8) {
                __m256 dz = _mm256_loadu_ps(dyr + i);
                if (masked)
                    dz =
                        _mm256_and_ps(dz, _mm256_cmp_ps(_mm256_loadu_ps(yr + i), zero, _CMP_GT_OQ));
                s0 = _mm256_add_ps(s0, dz);
                s1 = _mm256_fmadd_ps(dz, _mm256_sub_ps(_mm256_loadu_ps(xr + i), vmean), s1);
            }
            sum_dz += hsum(s0);
            sum_dz_xc += hsum(s1);
            for (; i < p.HW; ++i) {
                const float dz = (!masked || yr[i] > 0.f) ? dyr[i] : 0.f;
                sum_dz += dz;
                sum_dz_xc += double(dz) * double(xr[i] - mean);
            }
        }
        const double sum_dz_xhat = sum_dz_xc * invstd;
        const float mean_dz = float(sum_dz / double(M));
        const float k = gamma[c] * invstd;
        // dx = k * (dz - mean_dz - xhat * mean_dz_xhat) with xhat = (x - mean) * invstd.
        const float xc_coef = float(sum_dz_xhat / double(M) * invstd);
        const __m256 vk = _mm256_set1_ps(k), vmdz = _mm256_set1_ps(mean_dz),
                     vcoef = _mm256_set1_ps(xc_coef);
        for (int n = 0; n < p.N; ++n) {
            const int64_t base = (int64_t(n) * p.C + c) * p.HW;
            const float *xr = x + base, *yr = y + base, *dyr = dy + base;
            float* dxr = dx + base;
            float* drr = dresidual ? dresidual + base : nullptr;
            int i = 0;
            for (; i + 8 <= p.HW; i += 8) {
                __m256 dz = _mm256_loadu_ps(dyr + i);
                if (masked)
                    dz =
                        _mm256_and_ps(dz, _mm256_cmp_ps(_mm256_loadu_ps(yr + i), zero, _CMP_GT_OQ));
                const __m256 xc = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vmean);
                const __m256 v =
                    _mm256_mul_ps(vk, _mm256_fnmadd_ps(xc, vcoef, _mm256_sub_ps(dz, vmdz)));
                _mm256_storeu_ps(dxr + i, v);
                if (drr) _mm256_storeu_ps(drr + i, dz);
            }
            for (; i < p.HW; ++i) {
                const float dz = (!masked || yr[i] > 0.f) ? dyr[i] : 0.f;
                dxr[i] = k * (dz - mean_dz - (xr[i] - mean) * xc_coef);
                if (drr) drr[i] = dz;
            }
        }
        dgamma[c] = float(dgamma[c] + sum_dz_xhat);
        dbeta[c] = float(dbeta[c] + sum_dz);
    });
}

}  // namespace gnet::cpu_fast
