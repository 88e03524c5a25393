// Device dispatch for the mixed-precision (bf16, channels-last) ops, as nn/layers.h does for the
// float32 ones: on a CPU model the gnet::cpu twin (the bf16-faithful specification: plain loops),
// or for the convolutions on the fast backend gnet::cpu_fast (the same roundings, float32 sums in
// another order); on a CUDA model the gnet::gpu kernel on the model's stream. Workspaces are
// GPU-only (the twins need none); their sizes are 0 on the CPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/adam.h"
#include "kernels/batchnorm_bf16.h"
#include "kernels/conv2d_bf16.h"
#include "kernels/pool_bf16.h"
#include "nn/layers.h"

namespace gnet::layer_bf16 {

size_t conv_forward_workspace_bytes(const Exec& e, const Conv2dParams& p, bool stats);
size_t conv_backward_weight_workspace_bytes(const Exec& e, const Conv2dParams& p);
size_t bn_backward_workspace_bytes(const Exec& e, const BnBf16Params& p);

void conv_forward(const Exec& e, const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y,
                  ChannelStats* stats, void* workspace);
void conv_backward_data(const Exec& e, const Conv2dParams& p, const Bf16* dy, const Bf16* wt,
                        Bf16* dx);
void conv_backward_weight(const Exec& e, const Conv2dParams& p, const Bf16* x, const Bf16* dy,
                          float* dw, Accum accum, void* workspace);
void conv_ihwo(const Exec& e, const Conv2dParams& p, const Bf16* w, Bf16* wt);

void bn_finalize(const Exec& e, const BnBf16Params& p, const float* sum, const float* sum_sq,
                 float* mean, float* invstd, float* running_mean, float* running_var);
void bn_eval_stats(const Exec& e, const BnBf16Params& p, const float* running_mean,
                   const float* running_var, float* mean, float* invstd);
void bn_apply(const Exec& e, const BnBf16Params& p, BnEpilogue epi, const Bf16* y,
              const float* mean, const float* invstd, const float* gamma, const float* beta,
              const Bf16* residual, Bf16* z);
void bn_backward(const Exec& e, const BnBf16Params& p, BnEpilogue epi, const Bf16* dz,
                 const Bf16* z, const Bf16* y, const float* mean, const float* invstd,
                 const float* gamma, Bf16* dy, Bf16* dresidual, float* dgamma, float* dbeta,
                 void* workspace);

void maxpool_forward(const Exec& e, const Pool2dParams& p, const Bf16* x, Bf16* y, int32_t* argmax);
void maxpool_backward(const Exec& e, const Pool2dParams& p, const Bf16* dy, const int32_t* argmax,
                      Bf16* dx);
void avgpool_forward(const Exec& e, int N, int HW, int C, const Bf16* x, float* y);
void avgpool_backward(const Exec& e, int N, int HW, int C, const float* dy, Bf16* dx);
void to_bf16(const Exec& e, int64_t n, const float* x, Bf16* y);
void add(const Exec& e, int64_t n, const Bf16* a, const Bf16* b, Bf16* y);
void adam_step(const Exec& e, const AdamParams& p, int64_t n, float* param, const float* grad,
               float* m, float* v, Bf16* param_bf16);
// scalars: null (the step's scalars from p), or, GPU only, this step's AdamScalars in device
// memory (what a captured CUDA graph reads anew at each replay).
void adam_step(const Exec& e, const AdamParams& p, const AdamScalars* scalars, int64_t n,
               float* param, const float* grad, float* m, float* v, Bf16* param_bf16);

}  // namespace gnet::layer_bf16
