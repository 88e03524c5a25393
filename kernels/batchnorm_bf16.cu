// batchnorm_bf16 GPU twin (see batchnorm_bf16.h).
//
// finalize / eval_stats: one thread per channel. apply: one thread per pair of channels (C even:
// one 32-bit load and store of two bf16; odd C: element by element). backward: the row range is
// cut into blocks of kRows rows; block b sums g and g * xhat over its rows for every channel (the
// threads stride over channels, each summing its channels' rows in row order) into
// workspace[b][2][C]; one thread per channel merges the blocks in order in double and writes the
// batch sums to the workspace's tail (and adds them to dgamma, dbeta); the last pass applies them.
// No atomics: the result does not depend on scheduling.
#include "kernels/batchnorm_bf16.h"

#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kRows = 256;     // rows per block of the backward's sums
constexpr int kThreads = 256;  // threads of the elementwise and summing kernels

__global__ void bn_finalize_kernel(int64_t M, int C, float eps, float momentum, const float* sum,
                                   const float* sum_sq, float* mean, float* invstd,
                                   float* running_mean, float* running_var) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const double m = double(M);
    const double mu = double(sum[c]) / m;
    double var = double(sum_sq[c]) / m - mu * mu;
    var = var > 0.0 ? var : 0.0;
    mean[c] = float(mu);
    invstd[c] = float(1.0 / sqrt(var + double(eps)));
    if (running_mean) {
        const double unbiased = M > 1 ? var * m / (m - 1) : var;
        running_mean[c] = float((1.0 - momentum) * running_mean[c] + double(momentum) * mu);
        running_var[c] = float((1.0 - momentum) * running_var[c] + double(momentum) * unbiased);
    }
}

__global__ void bn_eval_stats_kernel(int C, float eps, const float* running_mean,
                                     const float* running_var, float* mean, float* invstd) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    mean[c] = running_mean[c];
    invstd[c] = float(1.0 / sqrt(double(running_var[c]) + double(eps)));
}

__device__ __forceinline__ float bn_value(BnEpilogue epi, float y, float mean, float invstd,
                                          float gamma, float beta, float residual) {
    float v = (y - mean) * invstd * gamma + beta;
    if (epi == BnEpilogue::AddRelu) v += residual;
    if (epi != BnEpilogue::None) v = v > 0.0f ? v : 0.0f;
    return v;
}

// One thread per `Width` consecutive elements of a row (Width 2: C even, a bf16 pair).
template <int Width>
__global__ void bn_apply_kernel(int64_t M, int C, BnEpilogue epi, const Bf16* y, const float* mean,
                                const float* invstd, const float* gamma, const float* beta,
                                const Bf16* residual, Bf16* z) {
    const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t i = t * Width;
    if (i >= M * C) return;
    const int c = int(i % C);
    float v[Width], r[Width] = {};
    if constexpr (Width == 2) {
        const uint32_t yy = *reinterpret_cast<const uint32_t*>(y + i);
        v[0] = bits_float(yy << 16);
        v[1] = bits_float(yy & 0xffff0000u);
        if (epi == BnEpilogue::AddRelu) {
            const uint32_t rr = *reinterpret_cast<const uint32_t*>(residual + i);
            r[0] = bits_float(rr << 16);
            r[1] = bits_float(rr & 0xffff0000u);
        }
    } else {
        v[0] = to_float(y[i]);
        if (epi == BnEpilogue::AddRelu) r[0] = to_float(residual[i]);
    }
    float out[Width];
    for (int j = 0; j < Width; ++j)
        out[j] = bn_value(epi, v[j], mean[c + j], invstd[c + j], gamma[c + j], beta[c + j], r[j]);
    if constexpr (Width == 2)
        *reinterpret_cast<uint32_t*>(z + i) = pack_bf16x2(out[0], out[1]);
    else
        z[i] = to_bf16(out[0]);
}

__device__ __forceinline__ float masked_grad(BnEpilogue epi, const Bf16* dz, const Bf16* z,
                                             int64_t i) {
    const float d = to_float(dz[i]);
    return epi == BnEpilogue::None || to_float(z[i]) > 0.0f ? d : 0.0f;
}

// workspace[block][0][c] = sum of g, [block][1][c] = sum of g * xhat over the block's rows.
__global__ void bn_backward_partial_kernel(int64_t M, int C, BnEpilogue epi, const Bf16* dz,
                                           const Bf16* z, const Bf16* y, const float* mean,
                                           const float* invstd, float* partial) {
    const int64_t r0 = int64_t(blockIdx.x) * kRows;
    const int64_t r1 = r0 + kRows < M ? r0 + kRows : M;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sg = 0.0f, sgx = 0.0f;
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t i = r * C + c;
            const float g = masked_grad(epi, dz, z, i);
            const float xhat = (to_float(y[i]) - mean[c]) * invstd[c];
            sg += g;
            sgx += g * xhat;
        }
        partial[int64_t(blockIdx.x) * 2 * C + c] = sg;
        partial[int64_t(blockIdx.x) * 2 * C + C + c] = sgx;
    }
}

// totals[0][c], totals[1][c] = the blocks' partials merged in block order; dbeta, dgamma +=.
__global__ void bn_backward_merge_kernel(int blocks, int C, const float* partial, float* totals,
                                         float* dgamma, float* dbeta) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double sg = 0.0, sgx = 0.0;
    for (int b = 0; b < blocks; ++b) {
        sg += partial[int64_t(b) * 2 * C + c];
        sgx += partial[int64_t(b) * 2 * C + C + c];
    }
    totals[c] = float(sg);
    totals[C + c] = float(sgx);
    dbeta[c] += float(sg);
    dgamma[c] += float(sgx);
}

__global__ void bn_backward_apply_kernel(int64_t M, int C, BnEpilogue epi, const Bf16* dz,
                                         const Bf16* z, const Bf16* y, const float* mean,
                                         const float* invstd, const float* gamma,
                                         const float* totals, Bf16* dy, Bf16* dresidual) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= M * C) return;
    const int c = int(i % C);
    const float inv_m = float(1.0 / double(M));
    const float g = masked_grad(epi, dz, z, i);
    const float xhat = (to_float(y[i]) - mean[c]) * invstd[c];
    dy[i] = to_bf16(gamma[c] * invstd[c] * (g - (totals[c] + xhat * totals[C + c]) * inv_m));
    if (epi == BnEpilogue::AddRelu) dresidual[i] = to_bf16(g);
}

unsigned blocks_for(int64_t n, int threads) {
    return unsigned(ceil_div(n, threads));
}

void check(const BnBf16Params& p, BnEpilogue epi, const void* residual, const char* op) {
    if (p.M < 1 || p.C < 1) throw Error(std::string(op) + ": empty tensor");
    if (p.M * p.C >= (int64_t(1) << 31) * 2)
        throw Error(std::string(op) + ": tensor too large for one launch");
    if (epi == BnEpilogue::AddRelu && !residual)
        throw Error(std::string(op) + ": AddRelu needs the residual");
}

}  // namespace

void bn_bf16_finalize(const BnBf16Params& p, const float* sum, const float* sum_sq, float* mean,
                      float* invstd, float* running_mean, float* running_var, Stream stream) {
    launch<bn_finalize_kernel>(dim3(blocks_for(p.C, 128)), dim3(128), 0, stream, p.M, p.C, p.eps,
                               p.momentum, sum, sum_sq, mean, invstd, running_mean, running_var);
}

void bn_bf16_eval_stats(const BnBf16Params& p, const float* running_mean, const float* running_var,
                        float* mean, float* invstd, Stream stream) {
    launch<bn_eval_stats_kernel>(dim3(blocks_for(p.C, 128)), dim3(128), 0, stream, p.C, p.eps,
                                 running_mean, running_var, mean, invstd);
}

void bn_bf16_apply(const BnBf16Params& p, BnEpilogue epi, const Bf16* y, const float* mean,
                   const float* invstd, const float* gamma, const float* beta, const Bf16* residual,
                   Bf16* z, Stream stream) {
    check(p, epi, residual, "bn_bf16_apply");
    const Bf16* res = epi == BnEpilogue::AddRelu ? residual : nullptr;
    if (p.C % 2 == 0)
        launch<bn_apply_kernel<2>>(dim3(blocks_for(p.M * p.C / 2, kThreads)), dim3(kThreads), 0,
                                   stream, p.M, p.C, epi, y, mean, invstd, gamma, beta, res, z);
    else
        launch<bn_apply_kernel<1>>(dim3(blocks_for(p.M * p.C, kThreads)), dim3(kThreads), 0, stream,
                                   p.M, p.C, epi, y, mean, invstd, gamma, beta, res, z);
}

size_t bn_bf16_backward_workspace_bytes(const BnBf16Params& p) {
    return (size_t(ceil_div(p.M, kRows)) * 2 + 2) * size_t(p.C) * sizeof(float);
}

void bn_bf16_backward(const BnBf16Params& p, BnEpilogue epi, const Bf16* dz, const Bf16* z,
                      const Bf16* y, const float* mean, const float* invstd, const float* gamma,
                      Bf16* dy, Bf16* dresidual, float* dgamma, float* dbeta, void* workspace,
                      Stream stream) {
    check(p, epi, dresidual, "bn_bf16_backward");
    if (!workspace) throw Error("bn_bf16_backward: needs bn_bf16_backward_workspace_bytes");
    const int blocks = int(ceil_div(p.M, kRows));
    float* partial = static_cast<float*>(workspace);
    float* totals = partial + int64_t(blocks) * 2 * p.C;
    Bf16* dres = epi == BnEpilogue::AddRelu ? dresidual : nullptr;
    launch<bn_backward_partial_kernel>(dim3(unsigned(blocks)), dim3(kThreads), 0, stream, p.M, p.C,
                                       epi, dz, z, y, mean, invstd, partial);
    launch<bn_backward_merge_kernel>(dim3(blocks_for(p.C, 128)), dim3(128), 0, stream, blocks, p.C,
                                     static_cast<const float*>(partial), totals, dgamma, dbeta);
    launch<bn_backward_apply_kernel>(dim3(blocks_for(p.M * p.C, kThreads)), dim3(kThreads), 0,
                                     stream, p.M, p.C, epi, dz, z, y, mean, invstd, gamma,
                                     static_cast<const float*>(totals), dy, dres);
}

}  // namespace gnet::gpu
