// Adam / AdamW update over one flat parameter arena of n floats (param, grad, m, v all (n)),
// PyTorch semantics (torch.optim.Adam / AdamW, amsgrad off), step = t >= 1 after increment:
//   Adam:  g = grad + weight_decay * param          AdamW: param *= 1 - lr * weight_decay; g = grad
//   m = beta1 * m + (1 - beta1) * g                 v = beta2 * v + (1 - beta2) * g * g
//   param -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (i.e. lr * mhat / (sqrt(vhat) + eps), eps added after the square root).
// param, m, v are updated in place (=); grad is read only. The bias corrections are computed
// once on the host in double. GPU: one launch over the whole arena, one thread per 4 floats with
// float4 loads when all four pointers are 16-byte aligned, scalar otherwise; grid-stride loop.
#pragma once

#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

enum class AdamMode { Adam, AdamW };

struct AdamParams {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
    int step = 1;  // 1 for the first update
    AdamMode mode = AdamMode::Adam;
};

// The per-step scalars both twins use (host, double precision, rounded to float once).
struct AdamScalars {
    float step_size;                               // lr / (1 - beta1^t)
    float bc2_sqrt;                                // sqrt(1 - beta2^t)
    float decay_factor;                            // AdamW: 1 - lr * weight_decay; Adam: 1
    float l2;                                      // Adam: weight_decay; AdamW: 0
    static AdamScalars make(const AdamParams& p);  // checks p (an Error when out of range)
};

// adam_step_bf16: the mixed-precision path's update, adam_step on the float32 master weights and,
// in the same pass, param_bf16[i] = bf16(param[i]) (round to nearest even), the copy the
// tensor-core kernels read.
namespace cpu {
void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m, float* v);
void adam_step_bf16(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
                    float* v, Bf16* param_bf16);
}  // namespace cpu

// Fast CPU backend (adam_cpu_fast.cpp): the same formula, vectorised, on the worker pool.
namespace cpu_fast {
void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m, float* v);
}  // namespace cpu_fast

namespace gpu {
void adam_step(const AdamParams& p, int64_t n, float* param, const float* grad, float* m, float* v,
               Stream stream);
void adam_step_bf16(const AdamParams& p, int64_t n, float* param, const float* grad, float* m,
                    float* v, Bf16* param_bf16, Stream stream);
// The same with this step's scalars read from `scalars` (device memory, AdamScalars::make of the
// step's AdamParams) when the kernel runs rather than passed at launch: a CUDA graph captures the
// launch once and replays it with each step's learning rate and bias corrections. beta1, beta2
// and eps come from p, constant over a run.
void adam_step_bf16(const AdamParams& p, const AdamScalars* scalars, int64_t n, float* param,
                    const float* grad, float* m, float* v, Bf16* param_bf16, Stream stream);
}  // namespace gpu

}  // namespace gnet
