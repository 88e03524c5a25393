// BatchNorm2d over (N, C, HW) NCHW-contiguous tensors, with an optional fused epilogue:
//   None:    y = bn(x)
//   Relu:    y = relu(bn(x))
//   AddRelu: y = relu(bn(x) + residual)       (the tail of a ResNet BasicBlock)
// bn(x) = (x - mean_c) * invstd_c * gamma_c + beta_c, statistics per channel over N*HW values.
//
// Training: batch statistics. save_mean = mean, save_invstd = 1/sqrt(biased_var + eps) (both =);
// running_mean/var are updated in place with momentum m: r = (1-m)*r + m*stat, where the running
// variance takes the UNBIASED batch variance (N*HW/(N*HW-1) * biased), as PyTorch does.
// Evaluation: the running statistics, nothing is updated.
// Saved for backward: x, the OUTPUT y (its sign is the ReLU mask), save_mean, save_invstd.
// Backward (training mode): dx =, dresidual = (AddRelu only; the masked dy), dgamma +=, dbeta +=.
//
// GPU split: statistics are per channel with a deterministic two-stage reduction (fixed split of
// the N*HW values into blocks, double accumulators, partials merged in a fixed order; no atomics);
// then one elementwise kernel normalises and applies the epilogue. When a channel has many values,
// the first stage's partials are parked in the output (y forward, dx backward) before the
// elementwise kernel overwrites it; hence y must not overlap x or residual, and dx must not overlap
// x, y, dy or dresidual (checked, an Error otherwise). No other scratch memory is needed.
// GPU limits (checked): fewer than 2^31 values per tensor, C <= 65535 (backward: C <= 4096), y and
// dx 8-byte aligned (16 for the float4 path, taken when HW % 4 == 0 and all pointers allow it).
#pragma once

#include <cstdint>

#include "kernels/common.h"

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

enum class BnEpilogue { None, Relu, AddRelu };

struct BatchNormParams {
    int N, C, HW;  // x, y, residual: (N, C, HW); gamma, beta, running/saved stats: (C)
    float eps = 1e-5f;
    float momentum = 0.1f;  // weight of the new batch statistic in the running update
};

namespace cpu {
void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd);
void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y);
void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta);
}  // namespace cpu

// Fast CPU backend (batchnorm_cpu_fast.cpp): same maths, AVX2 row sums, channels on the worker
// pool; y may equal x in forward_eval (elementwise). Tested against cpu:: (test_batchnorm_fast).
namespace cpu_fast {
void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd);
void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y);
void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta);
}  // namespace cpu_fast

namespace gpu {
void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd, Stream stream);
void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y,
                            Stream stream);
void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta, Stream stream);
}  // namespace gpu

// Shape and pointer checks shared by both twins (an Error naming the op otherwise).
void batchnorm_check(const BatchNormParams& p, BnEpilogue epi, const float* residual,
                     bool training);

}  // namespace gnet
