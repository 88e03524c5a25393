#include "nn/layers.h"

#include "kernels/add.h"
#include "kernels/avgpool.h"
#include "kernels/bce.h"
#include "kernels/error.h"
#include "kernels/gemm_cpu_fast.h"
#include "nn/traffic.h"

#include <cstdlib>
#include <string>

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
// On the GPU: the gpu:: twin with the stream appended.
#define GNET_DISPATCH(e, op, ...)                     \
    do {                                              \
        if ((e).device == Device::CPU) {              \
            ::gnet::cpu::op(__VA_ARGS__);             \
        } else {                                      \
            ::gnet::gpu::op(__VA_ARGS__, (e).stream); \
        }                                             \
    } while (0)
#else
#define GNET_DISPATCH(e, op, ...)                                                  \
    do {                                                                           \
        GNET_CHECK((e).device == Device::CPU, "this gnet was built without CUDA"); \
        ::gnet::cpu::op(__VA_ARGS__);                                              \
    } while (0)
#endif

// The ops with a fast CPU backend: gnet::cpu_fast when the Exec asks for it.
#if GNET_HAVE_CPU_FAST
#define GNET_CPU_CALL(e, op, ...)              \
    do {                                       \
        if ((e).cpu == CpuBackend::Fast) {     \
            ::gnet::cpu_fast::op(__VA_ARGS__); \
        } else {                               \
            ::gnet::cpu::op(__VA_ARGS__);      \
        }                                      \
    } while (0)
#else
#define GNET_CPU_CALL(e, op, ...) ::gnet::cpu::op(__VA_ARGS__)
#endif
#if GNET_HAVE_CUDA
#define GNET_DISPATCH_FAST(e, op, ...)                \
    do {                                              \
        if ((e).device == Device::CPU) {              \
            GNET_CPU_CALL(e, op, __VA_ARGS__);        \
        } else {                                      \
            ::gnet::gpu::op(__VA_ARGS__, (e).stream); \
        }                                             \
    } while (0)
#else
#define GNET_DISPATCH_FAST(e, op, ...)                                             \
    do {                                                                           \
        GNET_CHECK((e).device == Device::CPU, "this gnet was built without CUDA"); \
        GNET_CPU_CALL(e, op, __VA_ARGS__);                                         \
    } while (0)
#endif

namespace gnet {

CpuBackend default_cpu_backend() {
    static const CpuBackend b = [] {
        const char* s = std::getenv("GNET_CPU_BACKEND");
        if (!s || !*s || std::string(s) == "fast") return CpuBackend::Fast;
        if (std::string(s) == "reference") return CpuBackend::Reference;
        throw Error(std::string("GNET_CPU_BACKEND must be 'fast' or 'reference', not '") + s + "'");
    }();
    return b;
}

CpuBackend effective_cpu_backend(CpuBackend wanted) {
#if GNET_HAVE_CPU_FAST
    if (wanted == CpuBackend::Fast && cpu_fast::available()) return CpuBackend::Fast;
#endif
    (void)wanted;
    return CpuBackend::Reference;
}

const char* cpu_backend_name(CpuBackend b) {
    return b == CpuBackend::Fast ? "fast" : "reference";
}

}  // namespace gnet

namespace gnet::layer {

void conv2d_forward(const Exec& e, const Conv2dParams& p, const float* x, const float* w,
                    float* y) {
    GNET_DISPATCH_FAST(e, conv2d_forward, p, x, w, y);
}

void conv2d_backward_data(const Exec& e, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
    GNET_DISPATCH_FAST(e, conv2d_backward_data, p, dy, w, dx);
}

void conv2d_backward_weight(const Exec& e, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw, Accum accum, void* workspace) {
    if (e.device == Device::CPU) {
        GNET_CPU_CALL(e, conv2d_backward_weight, p, x, dy, dw, accum);
        return;
    }
#if GNET_HAVE_CUDA
    gpu::conv2d_backward_weight(p, x, dy, dw, accum, workspace, e.stream);
#else
    (void)workspace;
    throw Error("this gnet was built without CUDA");
#endif
}

size_t conv2d_workspace_bytes(const Exec& e, const Conv2dParams& p) {
    if (e.device == Device::CPU) return 0;
#if GNET_HAVE_CUDA
    return gpu::conv2d_workspace_bytes(p);
#else
    (void)p;
    throw Error("this gnet was built without CUDA");
#endif
}

void conv2d_forward_fused(const Exec& e, const Conv2dParams& p, const float* x, const float* w,
                          const float* bias, const float* residual, bool relu, float* y) {
    GNET_CHECK(e.cpu_fast(), "conv2d_forward_fused runs on the fast CPU backend only");
#if GNET_HAVE_CPU_FAST
    cpu_fast::conv2d_forward_fused(p, x, w, bias, residual, relu, y);
#else
    (void)p, (void)x, (void)w, (void)bias, (void)residual, (void)relu, (void)y;
#endif
}

void linear_forward(const Exec& e, const LinearParams& p, const float* x, const float* w,
                    const float* b, float* y) {
    count_traffic("linear_forward",
                  4.0 * (double(p.N) * p.IN + double(p.IN) * p.OUT + p.OUT + double(p.N) * p.OUT),
                  2.0 * p.N * p.IN * p.OUT);
    GNET_DISPATCH(e, linear_forward, p, x, w, b, y);
}

void linear_backward(const Exec& e, const LinearParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
    // Reads x, w, dy; writes dx; adds into dw, db (read and write).
    count_traffic("linear_backward",
                  4.0 * (2.0 * p.N * p.IN + double(p.N) * p.OUT + 3.0 * p.IN * p.OUT + 2.0 * p.OUT),
                  4.0 * p.N * p.IN * p.OUT);
    GNET_DISPATCH(e, linear_backward, p, x, w, dy, dx, dw, db);
}

void batchnorm_forward_train(const Exec& e, const BatchNormParams& p, BnEpilogue epi,
                             const float* x, const float* gamma, const float* beta,
                             const float* residual, float* y, float* running_mean,
                             float* running_var, float* save_mean, float* save_invstd) {
    GNET_DISPATCH_FAST(e, batchnorm_forward_train, p, epi, x, gamma, beta, residual, y,
                       running_mean, running_var, save_mean, save_invstd);
}

void batchnorm_forward_eval(const Exec& e, const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y) {
    GNET_DISPATCH_FAST(e, batchnorm_forward_eval, p, epi, x, gamma, beta, residual, running_mean,
                       running_var, y);
}

void batchnorm_backward(const Exec& e, const BatchNormParams& p, BnEpilogue epi, const float* x,
                        const float* y, const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta) {
    GNET_DISPATCH_FAST(e, batchnorm_backward, p, epi, x, y, dy, gamma, save_mean, save_invstd, dx,
                       dresidual, dgamma, dbeta);
}

void maxpool2d_forward(const Exec& e, const Pool2dParams& p, const float* x, float* y,
                       int32_t* argmax) {
    GNET_DISPATCH_FAST(e, maxpool2d_forward, p, x, y, argmax);
}

void maxpool2d_backward(const Exec& e, const Pool2dParams& p, const float* dy,
                        const int32_t* argmax, float* dx) {
    GNET_DISPATCH_FAST(e, maxpool2d_backward, p, dy, argmax, dx);
}

void avgpool_global_forward(const Exec& e, int N, int C, int HW, const float* x, float* y) {
    GNET_DISPATCH(e, avgpool_global_forward, N, C, HW, x, y);
}

void avgpool_global_backward(const Exec& e, int N, int C, int HW, const float* dy, float* dx) {
    GNET_DISPATCH(e, avgpool_global_backward, N, C, HW, dy, dx);
}

void add_forward(const Exec& e, int64_t n, const float* a, const float* b, float* y) {
    GNET_DISPATCH_FAST(e, add_forward, n, a, b, y);
}

void bce_logits_forward_backward(const Exec& e, int N, int G, const float* logits,
                                 const float* targets, const float* pos_weight, float* loss,
                                 float* dlogits) {
    count_traffic("bce_loss", 4.0 * (3.0 * N * G + G + 1));
    GNET_DISPATCH(e, bce_logits_forward_backward, N, G, logits, targets, pos_weight, loss, dlogits);
}

void adam_step(const Exec& e, const AdamParams& p, int64_t n, float* param, const float* grad,
               float* m, float* v) {
    GNET_DISPATCH_FAST(e, adam_step, p, n, param, grad, m, v);
}

void synchronize(const Exec& e) {
    if (e.device == Device::CPU) return;
#if GNET_HAVE_CUDA
    GNET_CUDA_CHECK(cudaStreamSynchronize(e.stream));
#endif
}

}  // namespace gnet::layer
