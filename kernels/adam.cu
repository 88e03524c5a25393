// Adam / AdamW GPU twin: one launch over the whole arena. One thread per float4 (grid-stride)
// when param, grad, m and v are all 16-byte aligned, then the last n % 4 values one per thread;
// scalar throughout otherwise. The CPU twin's formula in its order; nvcc contracts multiply-adds
// into FMAs (one rounding instead of two), so results differ from the twin by a few ulps.
#include <algorithm>
#include <cstdint>

#include "kernels/adam.h"
#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 4;

struct AdamArgs {
    AdamScalars s;
    float beta1, beta2, one_m_b1, one_m_b2, eps;
};

__device__ __forceinline__ void adam1(const AdamArgs& a, float& w, float g, float& m, float& v) {
    w = w * a.s.decay_factor;
    g = g + a.s.l2 * w;
    m = m * a.beta1 + a.one_m_b1 * g;
    v = v * a.beta2 + a.one_m_b2 * g * g;
    const float denom = sqrtf(v) / a.s.bc2_sqrt + a.eps;
    w = w - a.s.step_size * (m / denom);
}

// copy: null, or the bf16 copy of param written in the same pass (the mixed-precision path).
// scalars: null, or this step's AdamScalars in device memory, which then replace a.s (a CUDA
// graph's replay takes each step's learning rate and bias corrections from there).
__global__ void adam_step_kernel(AdamArgs a, const AdamScalars* scalars, int64_t n, float* param,
                                 const float* grad, float* m, float* v, bool vec, Bf16* copy) {
    if (scalars) a.s = *scalars;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n4 = n / 4;
        for (int64_t i = first; i < n4; i += stride) {
            float4 w = reinterpret_cast<float4*>(param)[i];
            const float4 g = reinterpret_cast<const float4*>(grad)[i];
            float4 mm = reinterpret_cast<float4*>(m)[i];
            float4 vv = reinterpret_cast<float4*>(v)[i];
            adam1(a, w.x, g.x, mm.x, vv.x);
            adam1(a, w.y, g.y, mm.y, vv.y);
            adam1(a, w.z, g.z, mm.z, vv.z);
            adam1(a, w.w, g.w, mm.w, vv.w);
            reinterpret_cast<float4*>(param)[i] = w;
            reinterpret_cast<float4*>(m)[i] = mm;
            reinterpret_cast<float4*>(v)[i] = vv;
            if (copy) {
                copy[4 * i] = to_bf16(w.x);
                copy[4 * i + 1] = to_bf16(w.y);
                copy[4 * i + 2] = to_bf16(w.z);
                copy[4 * i + 3] = to_bf16(w.w);
            }
        }
        done = n4 * 4;
    }
    for (int64_t i = done + first; i < n; i += stride) {
        adam1(a, param[i], grad[i], m[i], v[i]);
        if (copy) copy[i] = to_bf16(param[i]);
    }
}

bool aligned16(const void* p) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m, float* v,
               Stream stream) {
    GNET_CHECK(n >= 0, "gpu::adam_step: negative size");
    const AdamArgs a{AdamScalars::make(p), p.beta1, p.beta2, 1.f - p.beta1, 1.f - p.beta2, p.eps};
    if (n == 0) return;
    const bool vec = aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v);
    const int blocks =
        int(std::max<int64_t>(1, std::min(ceil_div(n / 4 + 1, kThreads), kMaxBlocks)));
    launch<adam_step_kernel>(blocks, kThreads, 0, stream, a,
                             static_cast<const AdamScalars*>(nullptr), n, param, grad, m, v, vec,
                             static_cast<Bf16*>(nullptr));
}

void adam_step_bf16(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
                    float* v, Bf16* param_bf16, Stream stream) {
    adam_step_bf16(p, nullptr, n, param, grad, m, v, param_bf16, stream);
}

void adam_step_bf16(const AdamParams& p, const AdamScalars* scalars, int64_t n, float* param,
                    const float* grad, float* m, float* v, Bf16* param_bf16, Stream stream) {
    GNET_CHECK(n >= 0, "gpu::adam_step_bf16: negative size");
    GNET_CHECK(param_bf16 != nullptr, "gpu::adam_step_bf16: no bf16 copy to write");
    const AdamArgs a{AdamScalars::make(p), p.beta1, p.beta2, 1.f - p.beta1, 1.f - p.beta2, p.eps};
    if (n == 0) return;
    const bool vec = aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v);
    const int blocks =
        int(std::max<int64_t>(1, std::min(ceil_div(n / 4 + 1, kThreads), kMaxBlocks)));
    launch<adam_step_kernel>(blocks, kThreads, 0, stream, a, scalars, n, param, grad, m, v, vec,
                             param_bf16);
}

}  // namespace gnet::gpu
