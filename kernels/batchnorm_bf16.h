// batchnorm_bf16: BatchNorm2d of the mixed-precision path over channels-last bf16 tensors
// (M = N*H*W rows of C channels), in the passes the tensor-core convolutions leave to it.
//
// Forward (training): the statistics come from the convolution's epilogue (conv2d_bf16_forward's
// ChannelStats: float sums of the float32 outputs and of their squares), so no pass reads y for
// them; bn_bf16_finalize turns them into mean, invstd = 1/sqrt(biased_var + eps) (saved for
// backward) and updates the running statistics as PyTorch does (unbiased variance, momentum m:
// r = (1-m) r + m stat). The variance is E[y^2] - E[y]^2 in double, clamped at 0: exact enough for
// convolution outputs, whose mean is small next to their spread.
// Evaluation: bn_bf16_eval_stats gives mean and invstd from the running statistics.
// Apply, one pass (the BN, the ReLU and the residual add of a BasicBlock together):
//   z = bf16( epi( gamma (y - mean) invstd + beta [+ residual] ) )     epi: None, Relu, AddRelu
// Backward (training), two passes: per-channel sums of g = dz * [z > 0] (the ReLU mask; g = dz for
// None) and of g * xhat, xhat = (y - mean) invstd, reduced deterministically (fixed row blocks,
// fixed merge order, double); then
//   dy = bf16( gamma invstd (g - (sum g + xhat sum g xhat) / M) ),  dresidual = g (AddRelu, =),
//   dbeta += sum g,  dgamma += sum g xhat   (float parameter gradients accumulate)
//
// CPU twin (batchnorm_bf16_cpu.cpp): those formulas as loops with double sums, the specification.
// GPU twin (batchnorm_bf16.cu): elementwise kernels over bf16 pairs; the backward's sums per block
// of rows into `workspace` (bn_bf16_backward_workspace_bytes), merged in block order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/batchnorm.h"
#include "kernels/bf16.h"

namespace gnet {

struct BnBf16Params {
    int64_t M;  // rows: N * H * W
    int C;      // channels (the contiguous axis)
    float eps = 1e-5f;
    float momentum = 0.1f;
};

namespace cpu {
void bn_bf16_finalize(const BnBf16Params& p, const float* sum, const float* sum_sq, float* mean,
                      float* invstd, float* running_mean /*or null*/, float* running_var);
void bn_bf16_eval_stats(const BnBf16Params& p, const float* running_mean, const float* running_var,
                        float* mean, float* invstd);
void bn_bf16_apply(const BnBf16Params& p, BnEpilogue epi, const Bf16* y, const float* mean,
                   const float* invstd, const float* gamma, const float* beta,
                   const Bf16* residual /*AddRelu*/, Bf16* z);
void bn_bf16_backward(const BnBf16Params& p, BnEpilogue epi, const Bf16* dz, const Bf16* z,
                      const Bf16* y, const float* mean, const float* invstd, const float* gamma,
                      Bf16* dy, Bf16* dresidual /*AddRelu*/, float* dgamma, float* dbeta);
}  // namespace cpu

namespace gpu {
void bn_bf16_finalize(const BnBf16Params& p, const float* sum, const float* sum_sq, float* mean,
                      float* invstd, float* running_mean, float* running_var, Stream stream);
void bn_bf16_eval_stats(const BnBf16Params& p, const float* running_mean, const float* running_var,
                        float* mean, float* invstd, Stream stream);
void bn_bf16_apply(const BnBf16Params& p, BnEpilogue epi, const Bf16* y, const float* mean,
                   const float* invstd, const float* gamma, const float* beta, const Bf16* residual,
                   Bf16* z, Stream stream);
size_t bn_bf16_backward_workspace_bytes(const BnBf16Params& p);
void bn_bf16_backward(const BnBf16Params& p, BnEpilogue epi, const Bf16* dz, const Bf16* z,
                      const Bf16* y, const float* mean, const float* invstd, const float* gamma,
                      Bf16* dy, Bf16* dresidual, float* dgamma, float* dbeta, void* workspace,
                      Stream stream);
}  // namespace gpu

}  // namespace gnet
