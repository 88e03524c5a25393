// Adam / AdamW, fast CPU backend (see adam.h): the reference's per-element formula over
// contiguous ranges of the arena on the worker pool, vectorised by the compiler.
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cpu_parallel.h"

namespace gnet::cpu_fast {

void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
               float* v) {
    const AdamScalars s = AdamScalars::make(p);
    const float b1 = p.beta1, b2 = p.beta2, one_m_b1 = 1.f - p.beta1, one_m_b2 = 1.f - p.beta2;
    const float eps = p.eps;
    parallel_for(n, [&](int64_t begin, int64_t end) {
        float* __restrict pw = param;
        const float* __restrict pg = grad;
        float* __restrict pm = m;
        float* __restrict pv = v;
        for (int64_t i = begin; i < end; ++i) {
            const float w = pw[i] * s.decay_factor;
            const float g = pg[i] + s.l2 * w;
            const float mi = pm[i] * b1 + one_m_b1 * g;
            const float vi = pv[i] * b2 + one_m_b2 * g * g;
            pm[i] = mi;
            pv[i] = vi;
            pw[i] = w - s.step_size * (mi / (std::sqrt(vi) / s.bc2_sqrt + eps));
        }
    });
}

}  // namespace gnet::cpu_fast
