#include "nn/layers_bf16.h"

#include "kernels/error.h"
#include "nn/traffic.h"

#if GNET_HAVE_CUDA
#define GNET_BF16_DISPATCH(e, cpu_call, gpu_call) \
    do {                                          \
        if ((e).device == Device::CPU) {          \
            ::gnet::cpu::cpu_call;                \
        } else {                                  \
            ::gnet::gpu::gpu_call;                \
        }                                         \
    } while (0)
#else
#define GNET_BF16_DISPATCH(e, cpu_call, gpu_call)                                  \
    do {                                                                           \
        GNET_CHECK((e).device == Device::CPU, "this gnet was built without CUDA"); \
        ::gnet::cpu::cpu_call;                                                     \
    } while (0)
#endif

// The convolutions have a fast CPU backend (conv2d_bf16_cpu_fast.cpp) as well as the twins.
#if GNET_HAVE_CPU_FAST
#define GNET_BF16_FAST_CPU(e, call)                        \
    do {                                                   \
        if ((e).cpu_fast()) return ::gnet::cpu_fast::call; \
    } while (0)
#else
#define GNET_BF16_FAST_CPU(e, call) \
    do {                            \
    } while (0)
#endif

namespace gnet::layer_bf16 {
namespace {
constexpr double kB = 2, kF = 4;  // bytes of a bf16 and of a float
double conv_flops(const Conv2dParams& p) {
    return 2.0 * double(p.y_size()) * p.C * p.KH * p.KW;
}
}  // namespace

size_t conv_forward_workspace_bytes(const Exec& e, const Conv2dParams& p, bool stats) {
#if GNET_HAVE_CUDA
    if (e.device == Device::CUDA) return gpu::conv2d_bf16_forward_workspace_bytes(p, stats);
#endif
    (void)e, (void)p, (void)stats;
    return 0;
}

size_t conv_backward_weight_workspace_bytes(const Exec& e, const Conv2dParams& p) {
#if GNET_HAVE_CUDA
    if (e.device == Device::CUDA) return gpu::conv2d_bf16_backward_weight_workspace_bytes(p);
#endif
    (void)e, (void)p;
    return 0;
}

size_t bn_backward_workspace_bytes(const Exec& e, const BnBf16Params& p) {
#if GNET_HAVE_CUDA
    if (e.device == Device::CUDA) return gpu::bn_bf16_backward_workspace_bytes(p);
#endif
    (void)e, (void)p;
    return 0;
}

void conv_forward(const Exec& e, const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y,
                  ChannelStats* stats, void* workspace) {
    count_traffic("conv_forward",
                  kB * double(p.x_size() + p.w_size() + p.y_size()) + (stats ? 2 * kF * p.OC : 0),
                  conv_flops(p));
    GNET_BF16_FAST_CPU(e, conv2d_bf16_forward(p, x, w, y, stats));
    GNET_BF16_DISPATCH(e, conv2d_bf16_forward(p, x, w, y, stats),
                       conv2d_bf16_forward(p, x, w, y, stats, workspace, e.stream));
    (void)workspace;
}

void conv_backward_data(const Exec& e, const Conv2dParams& p, const Bf16* dy, const Bf16* wt,
                        Bf16* dx) {
    count_traffic("conv_backward_data", kB * double(p.y_size() + p.w_size() + p.x_size()),
                  conv_flops(p));
    GNET_BF16_FAST_CPU(e, conv2d_bf16_backward_data(p, dy, wt, dx));
    GNET_BF16_DISPATCH(e, conv2d_bf16_backward_data(p, dy, wt, dx),
                       conv2d_bf16_backward_data(p, dy, wt, dx, e.stream));
}

void conv_backward_weight(const Exec& e, const Conv2dParams& p, const Bf16* x, const Bf16* dy,
                          float* dw, Accum accum, void* workspace) {
    count_traffic("conv_backward_weight",
                  kB * double(p.x_size() + p.y_size()) +
                      (accum == Accum::Add ? 2 : 1) * kF * double(p.w_size()),
                  conv_flops(p));
    GNET_BF16_FAST_CPU(e, conv2d_bf16_backward_weight(p, x, dy, dw, accum));
    GNET_BF16_DISPATCH(e, conv2d_bf16_backward_weight(p, x, dy, dw, accum),
                       conv2d_bf16_backward_weight(p, x, dy, dw, accum, workspace, e.stream));
    (void)workspace;
}

void conv_ihwo(const Exec& e, const Conv2dParams& p, const Bf16* w, Bf16* wt) {
    count_traffic("conv_weight_transpose", 2 * kB * double(p.w_size()));
    GNET_BF16_DISPATCH(e, conv2d_bf16_ihwo(p, w, wt), conv2d_bf16_ihwo(p, w, wt, e.stream));
}

void bn_finalize(const Exec& e, const BnBf16Params& p, const float* sum, const float* sum_sq,
                 float* mean, float* invstd, float* running_mean, float* running_var) {
    count_traffic("bn_finalize", kF * 8.0 * p.C);
    GNET_BF16_DISPATCH(
        e, bn_bf16_finalize(p, sum, sum_sq, mean, invstd, running_mean, running_var),
        bn_bf16_finalize(p, sum, sum_sq, mean, invstd, running_mean, running_var, e.stream));
}

void bn_eval_stats(const Exec& e, const BnBf16Params& p, const float* running_mean,
                   const float* running_var, float* mean, float* invstd) {
    count_traffic("bn_eval_stats", kF * 4.0 * p.C);
    GNET_BF16_DISPATCH(e, bn_bf16_eval_stats(p, running_mean, running_var, mean, invstd),
                       bn_bf16_eval_stats(p, running_mean, running_var, mean, invstd, e.stream));
}

void bn_apply(const Exec& e, const BnBf16Params& p, BnEpilogue epi, const Bf16* y,
              const float* mean, const float* invstd, const float* gamma, const float* beta,
              const Bf16* residual, Bf16* z) {
    count_traffic("bn_apply", kB * double(p.M) * p.C * (residual ? 3 : 2) + kF * 4.0 * p.C);
    GNET_BF16_DISPATCH(e, bn_bf16_apply(p, epi, y, mean, invstd, gamma, beta, residual, z),
                       bn_bf16_apply(p, epi, y, mean, invstd, gamma, beta, residual, z, e.stream));
}

void bn_backward(const Exec& e, const BnBf16Params& p, BnEpilogue epi, const Bf16* dz,
                 const Bf16* z, const Bf16* y, const float* mean, const float* invstd,
                 const float* gamma, Bf16* dy, Bf16* dresidual, float* dgamma, float* dbeta,
                 void* workspace) {
    // Two passes over dz, y (and z for the ReLU mask); the second writes dy (and dresidual).
    const double reads = epi == BnEpilogue::None ? 2 : 3, writes = dresidual ? 2 : 1;
    count_traffic("bn_backward", kB * double(p.M) * p.C * (2 * reads + writes) + kF * 6.0 * p.C);
    GNET_BF16_DISPATCH(
        e, bn_bf16_backward(p, epi, dz, z, y, mean, invstd, gamma, dy, dresidual, dgamma, dbeta),
        bn_bf16_backward(p, epi, dz, z, y, mean, invstd, gamma, dy, dresidual, dgamma, dbeta,
                         workspace, e.stream));
    (void)workspace;
}

void maxpool_forward(const Exec& e, const Pool2dParams& p, const Bf16* x, Bf16* y,
                     int32_t* argmax) {
    count_traffic("maxpool_forward",
                  double(p.N) * p.C * (kB * p.H * p.W + (kB + 4) * double(p.OH) * p.OW));
    GNET_BF16_DISPATCH(e, maxpool2d_bf16_forward(p, x, y, argmax),
                       maxpool2d_bf16_forward(p, x, y, argmax, e.stream));
}

void maxpool_backward(const Exec& e, const Pool2dParams& p, const Bf16* dy, const int32_t* argmax,
                      Bf16* dx) {
    count_traffic("maxpool_backward",
                  double(p.N) * p.C * ((kB + 4) * double(p.OH) * p.OW + kB * p.H * p.W));
    GNET_BF16_DISPATCH(e, maxpool2d_bf16_backward(p, dy, argmax, dx),
                       maxpool2d_bf16_backward(p, dy, argmax, dx, e.stream));
}

void avgpool_forward(const Exec& e, int N, int HW, int C, const Bf16* x, float* y) {
    count_traffic("avgpool_forward", double(N) * C * (kB * HW + kF));
    GNET_BF16_DISPATCH(e, avgpool_bf16_forward(N, HW, C, x, y),
                       avgpool_bf16_forward(N, HW, C, x, y, e.stream));
}

void avgpool_backward(const Exec& e, int N, int HW, int C, const float* dy, Bf16* dx) {
    count_traffic("avgpool_backward", double(N) * C * (kF + kB * HW));
    GNET_BF16_DISPATCH(e, avgpool_bf16_backward(N, HW, C, dy, dx),
                       avgpool_bf16_backward(N, HW, C, dy, dx, e.stream));
}

void to_bf16(const Exec& e, int64_t n, const float* x, Bf16* y) {
    count_traffic("input_to_bf16", (kF + kB) * double(n));
    GNET_BF16_DISPATCH(e, to_bf16_copy(n, x, y), to_bf16_copy(n, x, y, e.stream));
}

void add(const Exec& e, int64_t n, const Bf16* a, const Bf16* b, Bf16* y) {
    count_traffic("add", 3 * kB * double(n));
    GNET_BF16_DISPATCH(e, add_bf16(n, a, b, y), add_bf16(n, a, b, y, e.stream));
}

void adam_step(const Exec& e, const AdamParams& p, int64_t n, float* param, const float* grad,
               float* m, float* v, Bf16* param_bf16) {
    // Reads param, grad, m, v; writes param, m, v and the bf16 copy.
    count_traffic("adam", (7 * kF + kB) * double(n));
    GNET_BF16_DISPATCH(e, adam_step_bf16(p, n, param, grad, m, v, param_bf16),
                       adam_step_bf16(p, n, param, grad, m, v, param_bf16, e.stream));
}

void adam_step(const Exec& e, const AdamParams& p, const AdamScalars* scalars, int64_t n,
               float* param, const float* grad, float* m, float* v, Bf16* param_bf16) {
    if (!scalars) return adam_step(e, p, n, param, grad, m, v, param_bf16);
    count_traffic("adam", (7 * kF + kB) * double(n));
#if GNET_HAVE_CUDA
    GNET_CHECK(e.device == Device::CUDA, "adam_step: device-side scalars need a GPU model");
    gpu::adam_step_bf16(p, scalars, n, param, grad, m, v, param_bf16, e.stream);
#else
    (void)e, (void)p, (void)n, (void)param, (void)grad, (void)m, (void)v, (void)param_bf16;
    throw Error("adam_step: device-side scalars need a gnet built with CUDA");
#endif
}

}  // namespace gnet::layer_bf16
