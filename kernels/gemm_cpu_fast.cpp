// The 6 x 16 AVX2/FMA micro-kernel (see gemm_cpu_fast.h). One template per row count, so the
// accumulators stay in registers; a partial column count goes through a 6 x 16 stack tile.
#include "kernels/gemm_cpu_fast.h"

#include <immintrin.h>

namespace gnet::cpu_fast {
namespace {

template <int MR>
void tile(int K, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb, float* c,
          int64_t ldc, bool add) {
    __m256 lo[MR], hi[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        lo[i] = _mm256_setzero_ps();
        hi[i] = _mm256_setzero_ps();
    }
    const float* ap[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
        ap[i] = a + i * a_rs;
    for (int k = 0; k < K; ++k) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            const __m256 ai = _mm256_broadcast_ss(ap[i]);
            lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
            ap[i] += a_cs;
        }
        b += ldb;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        float* ci = c + i * ldc;
        if (add) {
            lo[i] = _mm256_add_ps(lo[i], _mm256_loadu_ps(ci));
            hi[i] = _mm256_add_ps(hi[i], _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, lo[i]);
        _mm256_storeu_ps(ci + 8, hi[i]);
    }
}

using TileFn = void (*)(int, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t,
                        bool);
constexpr TileFn kTiles[kGemmMR + 1] = {nullptr, tile<1>, tile<2>, tile<3>,
                                        tile<4>, tile<5>, tile<6>};

}  // namespace

void gemm_tile(int mr, int nr, int K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
               int64_t ldb, float* c, int64_t ldc, Accum accum) {
    const bool add = accum == Accum::Add;
    if (nr == kGemmNR) {
        kTiles[mr](K, a, a_rs, a_cs, b, ldb, c, ldc, add);
        return;
    }
    alignas(32) float t[kGemmMR * kGemmNR];
    if (add)
        for (int i = 0; i < mr; ++i)
            for (int j = 0; j < nr; ++j)
                t[i * kGemmNR + j] = c[i * ldc + j];
    kTiles[mr](K, a, a_rs, a_cs, b, ldb, t, kGemmNR, add);
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j)
            c[i * ldc + j] = t[i * kGemmNR + j];
}

}  // namespace gnet::cpu_fast
