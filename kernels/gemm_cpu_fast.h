// The register-tiled matrix-multiply micro-kernel every fast CPU convolution is built on
// (AVX2 + FMA; kernels/gemm_cpu_fast.cpp is compiled with -mavx2 -mfma, so call it only when
// cpu_fast::available() says the CPU has them).
//
//   C[i][j] (= or +=) sum_{k < K} A(i, k) * B(k, j)     for i < mr <= 6, j < nr <= 16
//
// A(i, k) = a[i * a_rs + k * a_cs] (any strides: a row-major matrix, its transpose or a packed
// panel); row k of B is 16 contiguous floats at b + k * ldb (all 16 must be readable even when
// nr < 16); row i of C starts at c + i * ldc, and only its first nr values are written.
// 6 x 16 is 12 accumulator registers: per k, 2 loads of B, 6 broadcasts of A and 12 FMAs.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace gnet::cpu_fast {

constexpr int kGemmMR = 6;   // rows of C per micro-tile
constexpr int kGemmNR = 16;  // columns of C per micro-tile (two 8-float vectors)

void gemm_tile(int mr, int nr, int K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
               int64_t ldb, float* c, int64_t ldc, Accum accum);

// Whether this CPU runs the fast backend (AVX2 and FMA); checked once.
bool available();

}  // namespace gnet::cpu_fast
