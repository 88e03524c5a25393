// Max pooling, fast CPU backend (see maxpool2d.h): the reference's window walk and tie rules
// (bit-identical results), planes spread over the worker pool, no bounds checks for windows that
// lie inside the input, and for the ResNet stem's 3x3 stride-2 window 8 outputs at a time in AVX2
// (stride-2 columns deinterleaved from two loads; the same update rule in the same window order).
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "kernels/cpu_parallel.h"
#include "kernels/error.h"
#include "kernels/maxpool2d.h"

namespace gnet::cpu_fast {
namespace {

// Even and odd elements of the 16 floats a (lo) and b (hi): lanes j = x[2j] and x[2j + 1].
inline __m256 even_of(__m256 a, __m256 b) {
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}
inline __m256 odd_of(__m256 a, __m256 b) {
    const __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

// Outputs [ow0, ow0 + 8) of row oh for a 3x3 stride-2 window whose rows h0..h0+2 and columns
// 2*ow0 - pad .. 2*(ow0 + 7) - pad + 2 (+ 1 for the loads) lie inside the plane.
inline void pool3s2_8(const float* xp, int W, int h0, int w0, float* y, int32_t* a) {
    const __m256i iota2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256 best = _mm256_setzero_ps(), besti = _mm256_setzero_ps();
    for (int kh = 0; kh < 3; ++kh) {
        const float* r = xp + int64_t(h0 + kh) * W + w0;
        const __m256 l0 = _mm256_loadu_ps(r), l1 = _mm256_loadu_ps(r + 8);
        const __m256 l2 = _mm256_loadu_ps(r + 2), l3 = _mm256_loadu_ps(r + 10);
        const __m256 cand[3] = {even_of(l0, l1), odd_of(l0, l1), even_of(l2, l3)};
        for (int kw = 0; kw < 3; ++kw) {
            const __m256 v = cand[kw];
            const __m256 idx = _mm256_castsi256_ps(
                _mm256_add_epi32(_mm256_set1_epi32((h0 + kh) * W + w0 + kw), iota2));
            if (kh == 0 && kw == 0) {
                best = v;
                besti = idx;
                continue;
            }
            // The reference's rule: v > best, or v is NaN, replaces the winner.
            const __m256 upd =
                _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            best = _mm256_blendv_ps(best, v, upd);
            besti = _mm256_blendv_ps(besti, idx, upd);
        }
    }
    _mm256_storeu_ps(y, best);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a), _mm256_castps_si256(besti));
}

}  // namespace

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax) {
    const int64_t in_plane = int64_t(p.H) * p.W, out_plane = int64_t(p.OH) * p.OW;
    parallel_for_each(int64_t(p.N) * p.C, [&](int64_t plane) {
        const float* xp = x + plane * in_plane;
        float* yp = y + plane * out_plane;
        int32_t* ap = argmax + plane * out_plane;
        const bool stem = p.K == 3 && p.stride == 2;
        for (int oh = 0; oh < p.OH; ++oh) {
            const int h0 = oh * p.stride - p.pad;
            const bool rows_in = h0 >= 0 && h0 + p.K <= p.H;
            for (int ow = 0; ow < p.OW; ++ow) {
                const int w0 = ow * p.stride - p.pad;
                // 8 outputs at once when their loads (18 columns from w0) stay in the row.
                if (stem && rows_in && w0 >= 0 && ow + 8 <= p.OW && w0 + 18 <= p.W) {
                    pool3s2_8(xp, p.W, h0, w0, yp + int64_t(oh) * p.OW + ow,
                              ap + int64_t(oh) * p.OW + ow);
                    ow += 7;
                    continue;
                }
                float best = -std::numeric_limits<float>::infinity();
                int32_t best_i = -1;
                if (rows_in && w0 >= 0 && w0 + p.K <= p.W) {
                    for (int kh = 0; kh < p.K; ++kh) {
                        const float* r = xp + int64_t(h0 + kh) * p.W;
                        for (int kw = 0; kw < p.K; ++kw) {
                            const float v = r[w0 + kw];
                            if (best_i < 0 || v > best || std::isnan(v)) {
                                best = v;
                                best_i = (h0 + kh) * p.W + w0 + kw;
                            }
                        }
                    }
                } else {
                    for (int kh = 0; kh < p.K; ++kh) {
                        const int h = h0 + kh;
                        if (h < 0 || h >= p.H) continue;
                        for (int kw = 0; kw < p.K; ++kw) {
                            const int w = w0 + kw;
                            if (w < 0 || w >= p.W) continue;
                            const float v = xp[int64_t(h) * p.W + w];
                            if (best_i < 0 || v > best || std::isnan(v)) {
                                best = v;
                                best_i = h * p.W + w;
                            }
                        }
                    }
                }
                yp[int64_t(oh) * p.OW + ow] = best;
                ap[int64_t(oh) * p.OW + ow] = best_i;
            }
        }
    });
}

void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx) {
    const int64_t in_plane = int64_t(p.H) * p.W, out_plane = int64_t(p.OH) * p.OW;
    bool bad = false;
    parallel_for(int64_t(p.N) * p.C, [&](int64_t begin, int64_t end) {
        bool my_bad = false;
        for (int64_t plane = begin; plane < end; ++plane) {
            float* dxp = dx + plane * in_plane;
            for (int64_t i = 0; i < in_plane; ++i)
                dxp[i] = 0.f;
            const int32_t* ap = argmax + plane * out_plane;
            const float* dyp = dy + plane * out_plane;
            for (int64_t o = 0; o < out_plane; ++o) {
                const int32_t a = ap[o];
                if (a < 0 || a >= in_plane) {
                    my_bad = true;
                    continue;
                }
                dxp[a] += dyp[o];
            }
        }
        if (my_bad) bad = true;  // benign race: only ever set to true
    });
    GNET_CHECK(!bad, "maxpool2d_backward: argmax out of range");
}

}  // namespace gnet::cpu_fast
