// BatchNorm2d GPU twin. See batchnorm.h for the maths and the contract.
//
// Kernels (all deterministic; no atomics):
//  1. batchnorm_reduce_kernel   grid (S, C): block (s, c) sums two doubles over its fixed slice of
//     channel c's N*HW values (float4 loads when HW % 4 == 0). With S == 1 the block finishes the
//     channel itself; otherwise it writes its partial pair to scratch parked in the output tensor.
//  2. batchnorm_finish_kernel   grid C, one warp: merges the S partials of a channel in a fixed
//  order
//     and finishes it (forward: mean, invstd, running stats; backward: dgamma, dbeta and the two
//     per-channel coefficients of dx).
//  3. elementwise: batchnorm_apply_kernel (forward normalise + epilogue), and for the backward
//     batchnorm_backward_apply_kernel + batchnorm_backward_head_kernel: the backward coefficients
//     live in dx[0, 2C) until the very end, so the big kernel writes dx from element R = 2C
//     (rounded up to the vector width) on, and one last single-block kernel copies the coefficients
//     to shared memory before it overwrites dx[0, R).
// Indices are 32-bit: every tensor must hold fewer than 2^31 values (checked).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/batchnorm.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kReduceThreads = 256;
constexpr int64_t kValuesPerSplit = 8192;  // values of one channel summed by one block
constexpr int kMaxSplits = 128;
constexpr int kApplyThreads = 256;
constexpr int kHeadThreads = 256;
constexpr int kUnroll = 4;  // independent loads in flight per thread in the reduction

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// Sums (a, b) over the block in a fixed order; the result is valid in thread 0.
__device__ void block_sum2(double& a, double& b) {
    __shared__ double sa[32], sb[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        const int warps = (blockDim.x + 31) >> 5;
        a = lane < warps ? sa[lane] : 0.0;
        b = lane < warps ? sb[lane] : 0.0;
        a = warp_sum(a);
        b = warp_sum(b);
    }
}

template <int V>
__device__ __forceinline__ void load_v(const float* p, float (&out)[V]) {
    if constexpr (V == 4) {
        const float4 q = *reinterpret_cast<const float4*>(p);
        out[0] = q.x;
        out[1] = q.y;
        out[2] = q.z;
        out[3] = q.w;
    } else {
        out[0] = *p;
    }
}

template <int V>
__device__ __forceinline__ void store_v(float* p, const float (&in)[V]) {
    if constexpr (V == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(in[0], in[1], in[2], in[3]);
    } else {
        *p = in[0];
    }
}

// Where a channel's values live: group j (of V values) of channel c is at element offset
// ((n*C + c)*hwv + r)*V with n = j / hwv, r = j % hwv.
struct ChannelLayout {
    uint32_t C, hwv;
    __device__ __forceinline__ uint32_t offset(uint32_t c, uint32_t j) const {
        const uint32_t n = j / hwv, r = j - n * hwv;
        return ((n * C + c) * hwv + r);
    }
};

// Forward statistics: a = sum (x - K), b = sum (x - K)^2 with the shift K = the channel's first
// value (removes most of the cancellation of E[x^2] - E[x]^2; the sums are double anyway).
struct ForwardStats {
    const float* x;
    int HW;
    double count;
    float eps, momentum;
    float* running_mean;
    float* running_var;
    float* save_mean;
    float* save_invstd;

    __device__ double center(int c) const { return double(x[int64_t(c) * HW]); }
    template <int V>
    __device__ void accumulate(uint32_t off, double K, double& a, double& b) const {
        float v[V];
        load_v<V>(x + off, v);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            const double d = double(v[k]) - K;
            a += d;
            b += d * d;
        }
    }
    __device__ void finish(int c, double K, double a, double b) const {
        const double ms = a / count;
        const double var = fmax(b / count - ms * ms, 0.0);  // biased
        const double mean = K + ms;
        const double invstd = 1.0 / sqrt(var + double(eps));
        save_mean[c] = float(mean);
        save_invstd[c] = float(invstd);
        const double m = momentum;
        running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * mean);
        running_var[c] =
            float((1.0 - m) * double(running_var[c]) + m * var * count / (count - 1.0));
    }
};

// Backward sums: a = sum dz, b = sum dz * (x - mean), dz = dy masked by y > 0 for the ReLU
// epilogues. finish() adds into dgamma/dbeta and leaves (mean dz, mean dz*xhat) in coef[c],
// coef[C+c].
template <BnEpilogue E>
struct BackwardStats {
    const float* x;
    const float* y;
    const float* dy;
    const float* save_mean;
    const float* save_invstd;
    int C;
    double count;
    float* dgamma;
    float* dbeta;
    float* coef;  // (2, C), inside dx

    __device__ double center(int c) const { return double(save_mean[c]); }
    template <int V>
    __device__ void accumulate(uint32_t off, double mean, double& a, double& b) const {
        float xv[V], g[V];
        load_v<V>(x + off, xv);
        load_v<V>(dy + off, g);
        if constexpr (E != BnEpilogue::None) {
            float yv[V];
            load_v<V>(y + off, yv);
#pragma unroll
            for (int k = 0; k < V; ++k)
                g[k] = yv[k] > 0.f ? g[k] : 0.f;
        }
#pragma unroll
        for (int k = 0; k < V; ++k) {
            a += double(g[k]);
            b += double(g[k]) * (double(xv[k]) - mean);
        }
    }
    __device__ void finish(int c, double /*mean*/, double a, double b) const {
        const double invstd = save_invstd[c];
        dbeta[c] = float(double(dbeta[c]) + a);
        dgamma[c] = float(double(dgamma[c]) + b * invstd);
        coef[c] = float(a / count);
        coef[C + c] = float(b * invstd / count);
    }
};

template <int V, class Pass>
__global__ void __launch_bounds__(kReduceThreads)
    batchnorm_reduce_kernel(Pass pass, ChannelLayout lay, uint32_t groups, uint32_t chunk,
                            double* partial /*(C, S, 2), unused when S == 1*/) {
    const int c = blockIdx.y, s = blockIdx.x, S = gridDim.x;
    const uint32_t begin = uint32_t(s) * chunk;
    const uint32_t end = min(groups, begin + chunk);
    const double K = pass.center(c);
    double a = 0.0, b = 0.0;
    const uint32_t step = blockDim.x;
    for (uint32_t j = begin + threadIdx.x; j < end; j += kUnroll * step) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const uint32_t jj = j + u * step;
            if (jj < end) pass.template accumulate<V>(lay.offset(c, jj) * V, K, a, b);
        }
    }
    block_sum2(a, b);
    if (threadIdx.x == 0) {
        if (S == 1) {
            pass.finish(c, K, a, b);
        } else {
            partial[(size_t(c) * S + s) * 2 + 0] = a;
            partial[(size_t(c) * S + s) * 2 + 1] = b;
        }
    }
}

template <class Pass>
__global__ void batchnorm_finish_kernel(Pass pass, int S, const double* partial) {
    const int c = blockIdx.x, lane = threadIdx.x;
    double a = 0.0, b = 0.0;
    for (int s = lane; s < S; s += 32) {
        a += partial[(size_t(c) * S + s) * 2 + 0];
        b += partial[(size_t(c) * S + s) * 2 + 1];
    }
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) pass.finish(c, pass.center(c), a, b);
}

// Forward elementwise: y = epi((x - mean) * invstd * gamma + beta). kEval: invstd from the
// variance.
template <int V, BnEpilogue E, bool kEval>
__global__ void __launch_bounds__(kApplyThreads)
    batchnorm_apply_kernel(uint32_t groups, uint32_t hwv, uint32_t C, const float* x,
                           const float* gamma, const float* beta, const float* residual,
                           const float* mean, const float* stat2 /*invstd or var*/, float eps,
                           float* y) {
    for (uint32_t g = blockIdx.x * blockDim.x + threadIdx.x; g < groups;
         g += gridDim.x * blockDim.x) {
        const uint32_t c = (g / hwv) % C;
        const float invstd = kEval ? 1.f / sqrtf(stat2[c] + eps) : stat2[c];
        const float scale = invstd * gamma[c];
        const float mu = mean[c], shift = beta[c];
        float v[V];
        load_v<V>(x + size_t(g) * V, v);
        float r[V];
        if constexpr (E == BnEpilogue::AddRelu) load_v<V>(residual + size_t(g) * V, r);
#pragma unroll
        for (int k = 0; k < V; ++k) {
            float t = (v[k] - mu) * scale + shift;
            if constexpr (E == BnEpilogue::AddRelu) t += r[k];
            if constexpr (E != BnEpilogue::None) t = t < 0.f ? 0.f : t;  // NaN passes through
            v[k] = t;
        }
        store_v<V>(y + size_t(g) * V, v);
    }
}

// Backward elementwise body for group g: dx = gamma*invstd*(dz - mean_dz - xhat*mean_dz_xhat).
template <int V, BnEpilogue E>
__device__ __forceinline__ void backward_group(uint32_t g, uint32_t hwv, uint32_t C, const float* x,
                                               const float* y, const float* dy, const float* gamma,
                                               const float* save_mean, const float* save_invstd,
                                               const float* coef, float* dx, float* dresidual) {
    const uint32_t c = (g / hwv) % C;
    const float invstd = save_invstd[c], mu = save_mean[c];
    const float k = gamma[c] * invstd;
    const float mean_dz = coef[c], mean_dz_xhat = coef[C + c];
    float xv[V], dz[V];
    load_v<V>(x + size_t(g) * V, xv);
    load_v<V>(dy + size_t(g) * V, dz);
    if constexpr (E != BnEpilogue::None) {
        float yv[V];
        load_v<V>(y + size_t(g) * V, yv);
#pragma unroll
        for (int i = 0; i < V; ++i)
            dz[i] = yv[i] > 0.f ? dz[i] : 0.f;
    }
    if constexpr (E == BnEpilogue::AddRelu) store_v<V>(dresidual + size_t(g) * V, dz);
    float out[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
        const float xhat = (xv[i] - mu) * invstd;
        out[i] = k * (dz[i] - mean_dz - xhat * mean_dz_xhat);
    }
    store_v<V>(dx + size_t(g) * V, out);
}

// Groups [g_begin, groups); the coefficients are read from dx[0, 2C), which it never writes.
template <int V, BnEpilogue E>
__global__ void __launch_bounds__(kApplyThreads)
    batchnorm_backward_apply_kernel(uint32_t g_begin, uint32_t groups, uint32_t hwv, uint32_t C,
                                    const float* x, const float* y, const float* dy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* dx, float* dresidual) {
    const float* coef = dx;
    for (uint32_t g = g_begin + blockIdx.x * blockDim.x + threadIdx.x; g < groups;
         g += gridDim.x * blockDim.x)
        backward_group<V, E>(g, hwv, C, x, y, dy, gamma, save_mean, save_invstd, coef, dx,
                             dresidual);
}

// One block, launched last: groups [0, g_end), which hold the coefficients until now.
template <int V, BnEpilogue E>
__global__ void __launch_bounds__(kHeadThreads)
    batchnorm_backward_head_kernel(uint32_t g_end, uint32_t hwv, uint32_t C, const float* x,
                                   const float* y, const float* dy, const float* gamma,
                                   const float* save_mean, const float* save_invstd, float* dx,
                                   float* dresidual) {
    GNET_DYNAMIC_SHARED(float, coef_shared);  // (2, C)
    for (uint32_t i = threadIdx.x; i < 2 * C; i += blockDim.x)
        coef_shared[i] = dx[i];
    __syncthreads();
    for (uint32_t g = threadIdx.x; g < g_end; g += blockDim.x)
        backward_group<V, E>(g, hwv, C, x, y, dy, gamma, save_mean, save_invstd, coef_shared, dx,
                             dresidual);
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

bool aligned16(const void* p) {
    return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

bool overlaps(const float* a, const float* b, int64_t n) {
    if (!a || !b) return false;
    const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
    const auto bytes = uintptr_t(n) * sizeof(float);
    return pa < pb + bytes && pb < pa + bytes;
}

int apply_blocks(uint32_t groups) {
    return int(std::min<int64_t>(ceil_div(groups, kApplyThreads), 65535 * 8));
}

void check_sizes(const BatchNormParams& p) {
    const int64_t total = int64_t(p.N) * p.C * p.HW;
    GNET_CHECK(total < int64_t(std::numeric_limits<int32_t>::max()),
               "gpu::batchnorm: tensors of 2^31 or more values are not supported (" +
                   std::to_string(total) + ")");
    GNET_CHECK(p.C <= 65535, "gpu::batchnorm: at most 65535 channels");
}

struct Split {
    int S;
    uint32_t chunk;  // groups per block
};

Split choose_split(int64_t groups_per_channel, int V) {
    const int64_t values = groups_per_channel * V;
    int S = 1;
    if (values >= 2 * kValuesPerSplit)
        S = int(std::min<int64_t>(ceil_div(values, kValuesPerSplit), kMaxSplits));
    return {S, uint32_t(ceil_div(groups_per_channel, S))};
}

template <int V, class Pass>
void run_reduce(const BatchNormParams& p, const Pass& pass, double* scratch, Stream stream) {
    const uint32_t hwv = uint32_t(p.HW / V);
    const uint32_t groups = uint32_t(p.N) * hwv;
    const Split sp = choose_split(groups, V);
    const ChannelLayout lay{uint32_t(p.C), hwv};
    launch<batchnorm_reduce_kernel<V, Pass>>(dim3(sp.S, p.C), kReduceThreads, 0, stream, pass, lay,
                                             groups, sp.chunk, scratch);
    if (sp.S > 1) {
        launch<batchnorm_finish_kernel<Pass>>(p.C, 32, 0, stream, pass, sp.S, scratch);
    }
}

template <int V, BnEpilogue E, bool kEval>
void run_apply(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
               const float* residual, const float* mean, const float* stat2, float* y,
               Stream stream) {
    const uint32_t groups = uint32_t(int64_t(p.N) * p.C * p.HW / V);
    launch<batchnorm_apply_kernel<V, E, kEval>>(apply_blocks(groups), kApplyThreads, 0, stream,
                                                groups, uint32_t(p.HW / V), uint32_t(p.C), x, gamma,
                                                beta, residual, mean, stat2, p.eps, y);
}

template <int V, bool kEval>
void dispatch_apply(BnEpilogue epi, const BatchNormParams& p, const float* x, const float* gamma,
                    const float* beta, const float* residual, const float* mean, const float* stat2,
                    float* y, Stream stream) {
    switch (epi) {
        case BnEpilogue::None:
            return run_apply<V, BnEpilogue::None, kEval>(p, x, gamma, beta, residual, mean, stat2,
                                                         y, stream);
        case BnEpilogue::Relu:
            return run_apply<V, BnEpilogue::Relu, kEval>(p, x, gamma, beta, residual, mean, stat2,
                                                         y, stream);
        case BnEpilogue::AddRelu:
            return run_apply<V, BnEpilogue::AddRelu, kEval>(p, x, gamma, beta, residual, mean,
                                                            stat2, y, stream);
    }
}

template <int V, BnEpilogue E>
void run_backward(const BatchNormParams& p, const float* x, const float* y, const float* dy,
                  const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                  float* dresidual, float* dgamma, float* dbeta, Stream stream) {
    const int64_t M = int64_t(p.N) * p.HW;
    BackwardStats<E> pass{x,   y,         dy,     save_mean, save_invstd,
                          p.C, double(M), dgamma, dbeta,     dx /*coef*/};
    // Partials (when split) sit right after the coefficients: dx[2C, 2C + 4*C*S).
    run_reduce<V>(p, pass, reinterpret_cast<double*>(dx + 2 * int64_t(p.C)), stream);

    const uint32_t groups = uint32_t(int64_t(p.N) * p.C * p.HW / V);
    const uint32_t hwv = uint32_t(p.HW / V);
    const uint32_t head = std::min<uint32_t>(groups, uint32_t(ceil_div(2 * int64_t(p.C), V)));
    if (groups > head) {
        launch<batchnorm_backward_apply_kernel<V, E>>(
            apply_blocks(groups - head), kApplyThreads, 0, stream, head, groups, hwv, uint32_t(p.C),
            x, y, dy, gamma, save_mean, save_invstd, dx, dresidual);
    }
    launch<batchnorm_backward_head_kernel<V, E>>(1, kHeadThreads, 2 * size_t(p.C) * sizeof(float),
                                                 stream, head, hwv, uint32_t(p.C), x, y, dy, gamma,
                                                 save_mean, save_invstd, dx, dresidual);
}

template <int V>
void dispatch_backward(BnEpilogue epi, const BatchNormParams& p, const float* x, const float* y,
                       const float* dy, const float* gamma, const float* save_mean,
                       const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                       float* dbeta, Stream stream) {
    switch (epi) {
        case BnEpilogue::None:
            return run_backward<V, BnEpilogue::None>(p, x, y, dy, gamma, save_mean, save_invstd, dx,
                                                     dresidual, dgamma, dbeta, stream);
        case BnEpilogue::Relu:
            return run_backward<V, BnEpilogue::Relu>(p, x, y, dy, gamma, save_mean, save_invstd, dx,
                                                     dresidual, dgamma, dbeta, stream);
        case BnEpilogue::AddRelu:
            return run_backward<V, BnEpilogue::AddRelu>(p, x, y, dy, gamma, save_mean, save_invstd,
                                                        dx, dresidual, dgamma, dbeta, stream);
    }
}

}  // namespace

void batchnorm_forward_train(const BatchNormParams& p, BnEpilogue epi, const float* x,
                             const float* gamma, const float* beta, const float* residual, float* y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd, Stream stream) {
    batchnorm_check(p, epi, residual, true);
    check_sizes(p);
    const int64_t total = int64_t(p.N) * p.C * p.HW;
    GNET_CHECK(!overlaps(y, x, total) && !overlaps(y, residual, total),
               "gpu::batchnorm_forward_train: y must not overlap x or residual (y holds scratch)");
    GNET_CHECK(reinterpret_cast<uintptr_t>(y) % 8 == 0,
               "gpu::batchnorm_forward_train: y must be 8-byte aligned");
    const int64_t M = int64_t(p.N) * p.HW;
    ForwardStats pass{x,           p.HW,      double(M),  p.eps, p.momentum, running_mean,
                      running_var, save_mean, save_invstd};
    double* scratch = reinterpret_cast<double*>(y);  // (C, S, 2) partials, overwritten below
    const bool vec = p.HW % 4 == 0 && aligned16(x) && aligned16(y) && aligned16(residual);
    if (vec) {
        run_reduce<4>(p, pass, scratch, stream);
        dispatch_apply<4, false>(epi, p, x, gamma, beta, residual, save_mean, save_invstd, y,
                                 stream);
    } else {
        run_reduce<1>(p, pass, scratch, stream);
        dispatch_apply<1, false>(epi, p, x, gamma, beta, residual, save_mean, save_invstd, y,
                                 stream);
    }
}

void batchnorm_forward_eval(const BatchNormParams& p, BnEpilogue epi, const float* x,
                            const float* gamma, const float* beta, const float* residual,
                            const float* running_mean, const float* running_var, float* y,
                            Stream stream) {
    batchnorm_check(p, epi, residual, false);
    check_sizes(p);
    const bool vec = p.HW % 4 == 0 && aligned16(x) && aligned16(y) && aligned16(residual);
    if (vec)
        dispatch_apply<4, true>(epi, p, x, gamma, beta, residual, running_mean, running_var, y,
                                stream);
    else
        dispatch_apply<1, true>(epi, p, x, gamma, beta, residual, running_mean, running_var, y,
                                stream);
}

void batchnorm_backward(const BatchNormParams& p, BnEpilogue epi, const float* x, const float* y,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float* dx, float* dresidual, float* dgamma,
                        float* dbeta, Stream stream) {
    batchnorm_check(p, epi, epi == BnEpilogue::AddRelu ? dresidual : nullptr, true);
    GNET_CHECK(epi == BnEpilogue::AddRelu || dresidual == nullptr,
               "gpu::batchnorm_backward: dresidual is only written for the AddRelu epilogue");
    GNET_CHECK(epi == BnEpilogue::None || y != nullptr,
               "gpu::batchnorm_backward: the ReLU epilogues need the forward output y");
    check_sizes(p);
    const int64_t total = int64_t(p.N) * p.C * p.HW;
    GNET_CHECK(!overlaps(dx, x, total) && !overlaps(dx, y, total) && !overlaps(dx, dy, total) &&
                   !overlaps(dx, dresidual, total),
               "gpu::batchnorm_backward: dx must not overlap x, y, dy or dresidual (dx holds "
               "scratch)");
    GNET_CHECK(reinterpret_cast<uintptr_t>(dx) % 8 == 0,
               "gpu::batchnorm_backward: dx must be 8-byte aligned");
    GNET_CHECK(p.C <= 4096, "gpu::batchnorm_backward: at most 4096 channels");
    const bool vec = p.HW % 4 == 0 && aligned16(x) && aligned16(y) && aligned16(dy) &&
                     aligned16(dx) && aligned16(dresidual);
    if (vec)
        dispatch_backward<4>(epi, p, x, y, dy, gamma, save_mean, save_invstd, dx, dresidual, dgamma,
                             dbeta, stream);
    else
        dispatch_backward<1>(epi, p, x, y, dy, gamma, save_mean, save_invstd, dx, dresidual, dgamma,
                             dbeta, stream);
}

}  // namespace gnet::gpu
