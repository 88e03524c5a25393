// Adam / AdamW CPU twin: the same float arithmetic, in the same order, as PyTorch's
// single-tensor implementation.
#include <cmath>
#include <string>

#include "kernels/adam.h"
#include "kernels/error.h"

namespace gnet {

AdamScalars AdamScalars::make(const AdamParams& p) {
    GNET_CHECK(p.step >= 1, "adam_step: step must be >= 1, got " + std::to_string(p.step));
    GNET_CHECK(p.lr >= 0.f && p.eps >= 0.f && p.weight_decay >= 0.f,
               "adam_step: lr, eps and weight_decay must be non-negative");
    GNET_CHECK(p.beta1 >= 0.f && p.beta1 < 1.f && p.beta2 >= 0.f && p.beta2 < 1.f,
               "adam_step: betas must lie in [0, 1)");
    const double bc1 = 1.0 - std::pow(double(p.beta1), p.step);
    const double bc2 = 1.0 - std::pow(double(p.beta2), p.step);
    AdamScalars s;
    s.step_size = float(double(p.lr) / bc1);
    s.bc2_sqrt = float(std::sqrt(bc2));
    const bool decoupled = p.mode == AdamMode::AdamW;
    s.decay_factor = decoupled ? float(1.0 - double(p.lr) * double(p.weight_decay)) : 1.f;
    s.l2 = decoupled ? 0.f : p.weight_decay;
    return s;
}

namespace cpu {

void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
               float* v) {
    const AdamScalars s = AdamScalars::make(p);
    const float one_m_b1 = 1.f - p.beta1, one_m_b2 = 1.f - p.beta2;
    for (int64_t i = 0; i < n; ++i) {
        float w = param[i] * s.decay_factor;
        const float g = grad[i] + s.l2 * w;
        m[i] = m[i] * p.beta1 + one_m_b1 * g;
        v[i] = v[i] * p.beta2 + one_m_b2 * g * g;
        const float denom = std::sqrt(v[i]) / s.bc2_sqrt + p.eps;
        param[i] = w - s.step_size * (m[i] / denom);
    }
}

void adam_step_bf16(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
                    float* v, Bf16* param_bf16) {
    adam_step(p, n, param, grad, m, v);
    for (int64_t i = 0; i < n; ++i)
        param_bf16[i] = to_bf16(param[i]);
}

}  // namespace cpu
}  // namespace gnet
