// linear: fully connected layer, float32, row-major.
//
//   y  (N, OUT) = x (N, IN) * w^T (IN, OUT) + b (OUT)        forward   (=)
//   dx (N, IN)  = dy (N, OUT) * w (OUT, IN)                  backward  (=, skipped when nullptr)
//   dw (OUT, IN) += dy^T (OUT, N) * x (N, IN)                backward  (+=)
//   db (OUT)     += sum_n dy (n, :)                          backward  (+=, skipped when nullptr)
// Saved for backward: nothing of its own; the caller keeps x and w.
//
// CPU twin (linear_cpu.cpp): one OpenBLAS sgemm per product, db a plain loop over n.
// GPU twin (linear.cu): one 16x16-tiled matrix product kernel (shared-memory tiles over the
// reduction axis, one output per thread) for y, dx and dw; db one thread per output, summing n in
// order (deterministic, no atomics). Sized for the classifier head (N <= a few hundred, IN 512,
// OUT tens), any size works.
#pragma once

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;  // = cudaStream_t, as in nn/device.h

struct LinearParams {
    int N, IN, OUT;
};

namespace cpu {
void linear_forward(const LinearParams& p, const float* x /*(N,IN)*/, const float* w /*(OUT,IN)*/,
                    const float* b /*(OUT) or nullptr*/, float* y /*(N,OUT) =*/);
void linear_backward(const LinearParams& p, const float* x, const float* w, const float* dy,
                     float* dx /*(N,IN) = ; may be nullptr to skip*/, float* dw /*+=*/,
                     float* db /*+= ; may be nullptr*/);
}  // namespace cpu

namespace gpu {
// Device pointers; asynchronous on `stream`.
void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b, float* y,
                    Stream stream);
void linear_backward(const LinearParams& p, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, Stream stream);
}  // namespace gpu

}  // namespace gnet
