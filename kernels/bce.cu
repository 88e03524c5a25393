// BCE-with-logits GPU twin: ONE block of kThreads threads. Each thread walks elements
// i = tid, tid + kThreads, ... (double maths, as the CPU twin), writes dlogits[i] and keeps a
// double partial loss; the block sums the partials with a fixed tree in shared memory and thread 0
// writes the mean into the device scalar. Deterministic; no atomics, no scratch.
#include <cstdint>

#include "kernels/bce.h"
#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kThreads = 512;  // power of two (tree below)

__global__ void __launch_bounds__(kThreads)
    bce_logits_kernel(int N, int G, const float* logits, const float* targets,
                      const float* pos_weight, float* loss, float* dlogits) {
    __shared__ double partial[kThreads];
    const int64_t count = int64_t(N) * G;
    const double inv_count = 1.0 / double(count);
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += kThreads) {
        const double z = logits[i], t = targets[i];
        const double lw = pos_weight ? 1.0 + (double(pos_weight[i % G]) - 1.0) * t : 1.0;
        const double e = exp(-fabs(z));
        sum += (1.0 - t) * z + lw * (log1p(e) + fmax(-z, 0.0));
        if (dlogits) {
            const double sig_neg = z >= 0.0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
            dlogits[i] = float(((1.0 - t) - lw * sig_neg) * inv_count);
        }
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half >>= 1) {
        if (int(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = float(partial[0] * inv_count);
}

}  // namespace

void bce_logits_forward_backward(int N, int G, const float* logits, const float* targets,
                                 const float* pos_weight, float* loss, float* dlogits,
                                 Stream stream) {
    GNET_CHECK(N > 0 && G > 0, "gpu::bce_logits: shape must be positive");
    launch<bce_logits_kernel>(1, kThreads, 0, stream, N, G, logits, targets, pos_weight, loss,
                              dlogits);
}

}  // namespace gnet::gpu
