// Device dispatch for the layer ops: one call that runs, on a CPU model, the fast CPU backend
// (gnet::cpu_fast) or the gnet::cpu twin as the Exec says, or, on a CUDA model, the gnet::gpu twin
// on the model's stream. This is the only place where the model chooses between the
// implementations, so the ResNet18 code reads the same for every device.
//
// Pointers are host pointers on Device::CPU and device pointers on Device::CUDA. The GPU calls
// are asynchronous on `stream`; nothing here allocates. In a CPU-only build a CUDA Exec is an
// Error (no model can be built on CUDA there anyway).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/adam.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/linear.h"
#include "kernels/maxpool2d.h"
#include "nn/device.h"

namespace gnet {

// Which CPU kernels run a Device::CPU model:
//   Fast       gnet::cpu_fast (Winograd/packed-GEMM convolutions, threaded BN, pool, Adam; needs
//              AVX2 + FMA, else Reference is used)
//   Reference  the gnet::cpu twins, the specification (tests compare the two)
enum class CpuBackend { Fast, Reference };
// Fast, unless the environment says GNET_CPU_BACKEND=reference (read once).
CpuBackend default_cpu_backend();
// What `wanted` runs as on this CPU (Fast falls back to Reference without AVX2 + FMA).
CpuBackend effective_cpu_backend(CpuBackend wanted);
const char* cpu_backend_name(CpuBackend b);

struct Exec {
    Device device = Device::CPU;
    Stream stream = nullptr;
    CpuBackend cpu = CpuBackend::Reference;  // Device::CPU only; an effective backend
    bool cpu_fast() const { return device == Device::CPU && cpu == CpuBackend::Fast; }
};

namespace layer {

void conv2d_forward(const Exec& e, const Conv2dParams& p, const float* x, const float* w, float* y);
void conv2d_backward_data(const Exec& e, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx);
// `workspace` (GPU only) holds at least conv2d_workspace_bytes(e, p) bytes.
void conv2d_backward_weight(const Exec& e, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw, Accum accum, void* workspace);
size_t conv2d_workspace_bytes(const Exec& e, const Conv2dParams& p);  // 0 on the CPU
// Inference with batch norm folded into (w, bias): y = [relu](conv(x, w) + bias [+ residual]).
// Only on the fast CPU backend (e.cpu_fast()); elsewhere an Error.
void conv2d_forward_fused(const Exec& e, const Conv2dParams& p, const float* x, const float* w,
                          const float* bias, const float* residual, bool relu, float* y);

void linear_forward(const Exec& e, const LinearParams& p, const float* x, const float* w,
                    const float* b, float* y);
void linear_backward(const Exec& e, const LinearParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db);

void batchnorm_forward_train(const Exec& e, const BatchNormParams& p, BnEpilogue epi,
                             const float* x, const float* gamma, const float* beta,
                             const float* residual, float* y, float* running_mean,
                             float* running_var, float* save_mean, float* save_invstd);
void batchnorm_forward_eval(const Exec& e, const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y);
void batchnorm_backward(const Exec& e, const BatchNormParams& p, BnEpilogue epi, const float* x,
                        const float* y, const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta);

void maxpool2d_forward(const Exec& e, const Pool2dParams& p, const float* x, float* y,
                       int32_t* argmax);
void maxpool2d_backward(const Exec& e, const Pool2dParams& p, const float* dy,
                        const int32_t* argmax, float* dx);

void avgpool_global_forward(const Exec& e, int N, int C, int HW, const float* x, float* y);
void avgpool_global_backward(const Exec& e, int N, int C, int HW, const float* dy, float* dx);

void add_forward(const Exec& e, int64_t n, const float* a, const float* b, float* y);

void bce_logits_forward_backward(const Exec& e, int N, int G, const float* logits,
                                 const float* targets, const float* pos_weight, float* loss,
                                 float* dlogits);

void adam_step(const Exec& e, const AdamParams& p, int64_t n, float* param, const float* grad,
               float* m, float* v);

// Waits until everything queued on the stream is done (no-op on the CPU).
void synchronize(const Exec& e);

}  // namespace layer
}  // namespace gnet
