// linear GPU twin. See linear.h.
//
// linear_matmul_kernel: C (M, N) (= or +=) sum_k A(m, k) * B(k, n) (+ bias(n)) with A and B read
// through (row, column) strides, so one kernel serves y = x w^T + b, dx = dy w and dw += dy^T x.
// 16x16 threads, one output each; K walks through 16x16 shared-memory tiles of A and B.
// linear_bias_backward_kernel: db(o) += sum_n dy(n, o), one thread per o, n summed in order.
#include "kernels/linear.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

namespace gnet::gpu {
namespace {

constexpr int kTile = 16;

struct Strided {
    const float* data;
    int64_t row_stride, col_stride;  // element (r, c) at data[r*row_stride + c*col_stride]
};

static __global__ void linear_matmul_kernel(int M, int N, int K, Strided a, Strided b,
                                            const float* __restrict__ bias, float* __restrict__ c,
                                            Accum accum) {
    __shared__ float as[kTile][kTile + 1];  // as[m][k]
    __shared__ float bs[kTile][kTile + 1];  // bs[k][n]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int m = blockIdx.y * kTile + ty, n = blockIdx.x * kTile + tx;
    float acc = 0.f;
    for (int k0 = 0; k0 < K; k0 += kTile) {
        as[ty][tx] =
            (m < M && k0 + tx < K) ? a.data[m * a.row_stride + (k0 + tx) * a.col_stride] : 0.f;
        bs[ty][tx] =
            (k0 + ty < K && n < N) ? b.data[(k0 + ty) * b.row_stride + n * b.col_stride] : 0.f;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kTile; ++kk)
            acc = fmaf(as[ty][kk], bs[kk][tx], acc);
        __syncthreads();
    }
    if (m < M && n < N) {
        if (bias) acc += bias[n];
        float* d = c + int64_t(m) * N + n;
        *d = accum == Accum::Add ? *d + acc : acc;
    }
}

static __global__ void linear_bias_backward_kernel(int N, int OUT, const float* __restrict__ dy,
                                                   float* __restrict__ db) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OUT) return;
    float s = 0.f;
    for (int n = 0; n < N; ++n)
        s += dy[int64_t(n) * OUT + o];
    db[o] += s;
}

void matmul(int M, int N, int K, Strided a, Strided b, const float* bias, float* c, Accum accum,
            cudaStream_t stream) {
    const dim3 block(kTile, kTile);
    const dim3 grid(unsigned(ceil_div(N, kTile)), unsigned(ceil_div(M, kTile)));
    launch<linear_matmul_kernel>(grid, block, 0, stream, M, N, K, a, b, bias, c, accum);
}

void check_params(const LinearParams& p) {
    GNET_CHECK(p.N > 0 && p.IN > 0 && p.OUT > 0 && ceil_div(p.N, kTile) <= 65535 &&
                   ceil_div(p.OUT, kTile) <= 65535,
               "linear: sizes must be positive (and N, OUT < 1M), got N" + std::to_string(p.N) +
                   " IN" + std::to_string(p.IN) + " OUT" + std::to_string(p.OUT));
}

}  // namespace

void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b, float* y,
                    Stream stream) {
    check_params(p);
    // y (N, OUT) = x (N, IN) * w^T: B(i, o) = w[o*IN + i]
    matmul(p.N, p.OUT, p.IN, Strided{x, p.IN, 1}, Strided{w, 1, p.IN}, b, y, Accum::Overwrite,
           stream);
}

void linear_backward(const LinearParams& p, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, Stream stream) {
    check_params(p);
    // dx (N, IN) = dy (N, OUT) * w (OUT, IN)
    if (dx)
        matmul(p.N, p.IN, p.OUT, Strided{dy, p.OUT, 1}, Strided{w, p.IN, 1}, nullptr, dx,
               Accum::Overwrite, stream);
    // dw (OUT, IN) += dy^T (OUT, N) * x (N, IN): A(o, n) = dy[n*OUT + o]
    matmul(p.OUT, p.IN, p.N, Strided{dy, 1, p.OUT}, Strided{x, p.IN, 1}, nullptr, dw, Accum::Add,
           stream);
    if (db) {
        const int threads = 128;
        launch<linear_bias_backward_kernel>(unsigned(ceil_div(p.OUT, threads)), threads, 0, stream,
                                            p.N, p.OUT, dy, db);
    }
}

}  // namespace gnet::gpu
