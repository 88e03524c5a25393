// Winograd F(4x4, 3x3) on AVX2 (see winograd_cpu_fast.h for the maths and the work split).
//
// Layouts (per chunk of tc tiles; C and OC padded to multiples of 16 with zeros, Cp and OCp):
//   U  [OCp/16][36][Cp][16]   transformed filters, packed as the GEMM's B panels (one output
//                             panel's 36 points together: the transform writes them close by)
//   V  [36][tc][Cp]           transformed input patches (rows of the GEMM's A)
//   M  [36][tc][OCp]          the GEMM results, before the output transform
//   D  [36][tc][OCp]          backward-weight: transformed dy tiles
//   dU [36][OCp][Cp]          backward-weight: the filter gradient in the transformed domain
// The transforms work on 8 channels at once (one AVX register per patch position).
#include "kernels/winograd_cpu_fast.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/gemm_cpu_fast.h"

namespace gnet::cpu_fast {
namespace {

constexpr int kPoints = 36;  // 6 x 6 transformed positions
// V + M of one chunk (floats): 12 MB, comfortably inside this machine's 32 MB L3.
constexpr int64_t kChunkFloats = int64_t(3) << 20;

// G (6 x 3): U = G g G^T.
constexpr float kG[6][3] = {
    {1.f / 4, 0.f, 0.f},           {-1.f / 6, -1.f / 6, -1.f / 6}, {-1.f / 6, 1.f / 6, -1.f / 6},
    {1.f / 24, 1.f / 12, 1.f / 6}, {1.f / 24, -1.f / 12, 1.f / 6}, {0.f, 0.f, 1.f}};

int64_t round_up(int64_t a, int64_t b) {
    return (a + b - 1) / b * b;
}

struct Geometry {
    int N, Cin, Cout, H, W;  // input (N, Cin, H, W), output (N, Cout, H, W): stride 1, pad 1
    int tiles_h, tiles_w;
    int64_t T;        // tiles in the batch
    int64_t Cp, OCp;  // channel counts padded to 16
    int64_t chunk;    // tiles per chunk (a multiple of 6)
    int group;        // images converted to the blocked layout at once
    int Hb, Wb;       // blocked input with its 1-pixel border: 4 * tiles + 2
    int OHb, OWb;     // blocked output: 4 * tiles
    void tile(int64_t t, int& n, int& h0, int& w0) const {  // output origin of tile t
        const int64_t per_image = int64_t(tiles_h) * tiles_w;
        n = int(t / per_image);
        const int64_t r = t % per_image;
        h0 = int(r / tiles_w) * 4;
        w0 = int(r % tiles_w) * 4;
    }
};

Geometry geometry(const Conv2dParams& p) {
    Geometry g;
    g.N = p.N;
    g.Cin = p.C;
    g.Cout = p.OC;
    g.H = p.H;
    g.W = p.W;
    g.tiles_h = int(ceil_div(p.OH, 4));
    g.tiles_w = int(ceil_div(p.OW, 4));
    g.T = int64_t(p.N) * g.tiles_h * g.tiles_w;
    g.Cp = round_up(p.C, 16);
    g.OCp = round_up(p.OC, 16);
    const int64_t fit = kChunkFloats / (kPoints * (g.Cp + g.OCp));
    g.chunk = std::min(round_up(g.T, 6), std::max<int64_t>(6, fit / 6 * 6));
    const int64_t per_image = int64_t(g.tiles_h) * g.tiles_w;
    g.group = int(std::min<int64_t>(p.N, std::max<int64_t>(1, g.chunk / per_image)));
    g.OHb = 4 * g.tiles_h;
    g.OWb = 4 * g.tiles_w;
    g.Hb = g.OHb + 2;
    g.Wb = g.OWb + 2;
    return g;
}

float* scratch_floats(int which, int64_t n) {
    thread_local std::vector<float> buffers[5];
    std::vector<float>& v = buffers[which];
    if (int64_t(v.size()) < n) v.resize(size_t(n));
    return v.data();
}

// ---- 1-D transforms on 8-channel vectors; d: inputs at stride ds, o: outputs at stride os ----

// B^T d (6 -> 6)
inline void input_1d(const __m256* d, int ds, __m256* o, int os) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
    const __m256 a = d[0], b = d[ds], c = d[2 * ds], e = d[3 * ds], f = d[4 * ds], g = d[5 * ds];
    o[0] = _mm256_fmadd_ps(four, a, _mm256_fnmadd_ps(five, c, f));
    o[os] = _mm256_fnmadd_ps(four, _mm256_add_ps(b, c), _mm256_add_ps(e, f));
    o[2 * os] = _mm256_fmadd_ps(four, _mm256_sub_ps(b, c), _mm256_sub_ps(f, e));
    o[3 * os] = _mm256_fmadd_ps(two, _mm256_sub_ps(e, b), _mm256_sub_ps(f, c));
    o[4 * os] = _mm256_fmadd_ps(two, _mm256_sub_ps(b, e), _mm256_sub_ps(f, c));
    o[5 * os] = _mm256_fmadd_ps(four, b, _mm256_fnmadd_ps(five, e, g));
}

// A^T m (6 -> 4)
inline void output_1d(const __m256* m, int ms, __m256* o, int os) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), eight = _mm256_set1_ps(8.f);
    const __m256 p = _mm256_add_ps(m[ms], m[2 * ms]), q = _mm256_sub_ps(m[ms], m[2 * ms]);
    const __m256 r = _mm256_add_ps(m[3 * ms], m[4 * ms]), s = _mm256_sub_ps(m[3 * ms], m[4 * ms]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], p), r);
    o[os] = _mm256_fmadd_ps(two, s, q);
    o[2 * os] = _mm256_fmadd_ps(four, r, p);
    o[3 * os] = _mm256_add_ps(_mm256_fmadd_ps(eight, s, q), m[5 * ms]);
}

// A d (4 -> 6), the adjoint of output_1d
inline void grad_1d(const __m256* d, int ds, __m256* o, int os) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f);
    const __m256 a = d[0], b = d[ds], c = d[2 * ds], e = d[3 * ds];
    const __m256 p = _mm256_add_ps(a, c), q = _mm256_add_ps(b, e);
    const __m256 r = _mm256_fmadd_ps(four, c, a), s = _mm256_fmadd_ps(four, e, b);
    o[0] = a;
    o[os] = _mm256_add_ps(p, q);
    o[2 * os] = _mm256_sub_ps(p, q);
    o[3 * os] = _mm256_fmadd_ps(two, s, r);
    o[4 * os] = _mm256_fnmadd_ps(two, s, r);
    o[5 * os] = e;
}

// ---- NCHW <-> channel-blocked [C/8][H][W][8] layout ----

// 8 x 8 transpose: r[i] lane j -> o[j] lane i.
inline void transpose8(const __m256* r, __m256* o) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    o[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    o[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    o[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    o[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    o[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    o[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    o[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    o[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Input row h of channels [c0, c0 + 8) of one image (C, H, W) -> row[Wb][8], the row placed at
// column `pad`; zeros around it, for h outside the image and for channels >= C.
void block_row(const float* img, int C, int H, int W, int pad, int c0, int h, int Wb, float* row) {
    if (h < 0 || h >= H) {
        std::fill(row, row + int64_t(Wb) * 8, 0.f);
        return;
    }
    const int64_t plane = int64_t(H) * W;
    const float* base = img + int64_t(c0) * plane + int64_t(h) * W;
    int w = 0;
    if (c0 + 8 <= C)
        for (; w + 8 <= W; w += 8) {
            __m256 r[8], o[8];
            for (int l = 0; l < 8; ++l)
                r[l] = _mm256_loadu_ps(base + l * plane + w);
            transpose8(r, o);
            for (int j = 0; j < 8; ++j)
                _mm256_storeu_ps(row + int64_t(w + pad + j) * 8, o[j]);
        }
    for (int wb = 0; wb < Wb; ++wb) {
        const int ww = wb - pad;
        if (ww >= 0 && ww < w) continue;  // done by the vector loop
        for (int l = 0; l < 8; ++l)
            row[int64_t(wb) * 8 + l] =
                (ww >= 0 && ww < W && c0 + l < C) ? base[l * plane + ww] : 0.f;
    }
}

// row[Wb][8] (channels [c0, c0 + 8)) -> output row h of one image (C, H, W), with the epilogue
// (bias, residual laid out like the image, ReLU).
void unblock_row(const float* row, int C, int H, int W, int c0, int h, const ConvEpilogue& epi,
                 const float* residual_img, float* img) {
    const int64_t plane = int64_t(H) * W;
    const int64_t first = int64_t(c0) * plane + int64_t(h) * W;
    float* out = img + first;
    const float* res = epi.residual ? residual_img + first : nullptr;
    const __m256 zero = _mm256_setzero_ps();
    int w = 0;
    if (c0 + 8 <= C)
        for (; w + 8 <= W; w += 8) {
            __m256 r[8], o[8];
            for (int j = 0; j < 8; ++j)
                r[j] = _mm256_loadu_ps(row + int64_t(w + j) * 8);
            transpose8(r, o);
            for (int l = 0; l < 8; ++l) {
                __m256 v = o[l];
                if (epi.bias) v = _mm256_add_ps(v, _mm256_set1_ps(epi.bias[c0 + l]));
                if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + l * plane + w));
                // ReLU keeps NaN, as the reference: v < 0 ? 0 : v
                if (epi.relu) v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
                _mm256_storeu_ps(out + l * plane + w, v);
            }
        }
    for (int l = 0; l < 8 && c0 + l < C; ++l) {
        const float bias = epi.bias ? epi.bias[c0 + l] : 0.f;
        for (int ww = w; ww < W; ++ww) {
            float v = row[int64_t(ww) * 8 + l] + bias;
            if (res) v += res[l * plane + ww];
            if (epi.relu && v < 0.f) v = 0.f;
            out[l * plane + ww] = v;
        }
    }
}

// nimg images (C, H, W) -> dst [nimg][Cp/8][Hb][Wb][8], each image placed at (pad, pad).
void to_blocked(const float* src, int nimg, int C, int H, int W, int pad, int64_t Cp, int Hb,
                int Wb, float* dst) {
    const int64_t CB = Cp / 8, img_floats = int64_t(C) * H * W;
    parallel_for_each(int64_t(nimg) * CB * Hb, [&](int64_t item) {
        const int64_t img = item / (CB * Hb), cb = (item / Hb) % CB;
        block_row(src + img * img_floats, C, H, W, pad, int(cb * 8), int(item % Hb) - pad, Wb,
                  dst + item * Wb * 8);
    });
}

// src [nimg][Cp/8][Hb][Wb][8] -> dst nimg images (C, H, W) with the epilogue.
// Only the 8-channel blocks [cb_begin, cb_end).
void from_blocked(const float* src, int nimg, int C, int H, int W, int64_t Cp, int Hb, int Wb,
                  int64_t cb_begin, int64_t cb_end, const ConvEpilogue& epi, const float* residual,
                  float* dst) {
    const int64_t CB = Cp / 8, nb = cb_end - cb_begin, img_floats = int64_t(C) * H * W;
    parallel_for_each(int64_t(nimg) * nb * H, [&](int64_t item) {
        const int64_t img = item / (nb * H), cb = cb_begin + (item / H) % nb;
        const int h = int(item % H);
        unblock_row(src + ((img * CB + cb) * Hb + h) * Wb * 8, C, H, W, int(cb * 8), h, epi,
                    residual ? residual + img * img_floats : nullptr, dst + img * img_floats);
    });
}

// ---- the phases ----

// U = G g G^T for every (oc, c), packed [OCp/16][36][Cp][16]; 16 output channels per vector pair.
// Output panels [ocb0, ocb0 + nb) only, stored from U's first panel on.
void transform_weights(const float* w, bool flipped, const Geometry& g, int64_t ocb0, int64_t nb,
                       float* U) {
    parallel_for_each(nb * g.Cp, [&](int64_t item) {
        const int64_t local = item / g.Cp, ocb = ocb0 + local, c = item % g.Cp;
        alignas(32) float taps[9][16];
        for (int l = 0; l < 16; ++l) {
            const int64_t oc = ocb * 16 + l;
            const bool in = oc < g.Cout && c < g.Cin;
            const float* src = !in       ? nullptr
                               : flipped ? w + (c * g.Cout + oc) * 9
                                         : w + (oc * g.Cin + c) * 9;
            for (int k = 0; k < 9; ++k)
                taps[k][l] = in ? src[flipped ? 8 - k : k] : 0.f;
        }
        for (int half = 0; half < 2; ++half) {
            __m256 t[9], h[6][3];
            for (int k = 0; k < 9; ++k)
                t[k] = _mm256_load_ps(taps[k] + half * 8);
            for (int a = 0; a < 6; ++a)  // G g: 6 x 3
                for (int j = 0; j < 3; ++j)
                    h[a][j] = _mm256_fmadd_ps(
                        _mm256_set1_ps(kG[a][0]), t[j],
                        _mm256_fmadd_ps(_mm256_set1_ps(kG[a][1]), t[3 + j],
                                        _mm256_mul_ps(_mm256_set1_ps(kG[a][2]), t[6 + j])));
            for (int a = 0; a < 6; ++a)
                for (int b = 0; b < 6; ++b) {
                    const __m256 v = _mm256_fmadd_ps(
                        h[a][0], _mm256_set1_ps(kG[b][0]),
                        _mm256_fmadd_ps(h[a][1], _mm256_set1_ps(kG[b][1]),
                                        _mm256_mul_ps(h[a][2], _mm256_set1_ps(kG[b][2]))));
                    _mm256_storeu_ps(
                        U + ((local * kPoints + (a * 6 + b)) * g.Cp + c) * 16 + half * 8, v);
                }
        }
    });
}

// dw (OC, C, 3, 3) (= or +=) G^T dU G from dU [36][OCp][Cp], 8 input channels per vector.
// Rows [oc_begin, oc_end) of dw from dU [36][rows][Cp] (row 0 = oc_begin).
void transform_weight_grad(const Geometry& g, const float* dU, int64_t oc_begin, int64_t oc_end,
                           int64_t rows, float* dw, Accum accum) {
    const int64_t plane = rows * g.Cp, CB = g.Cp / 8;
    parallel_for_each((oc_end - oc_begin) * CB, [&](int64_t item) {
        const int64_t oc = oc_begin + item / CB, c0 = (item % CB) * 8;
        if (c0 >= g.Cin) return;
        const float* u = dU + (oc - oc_begin) * g.Cp + c0;
        __m256 h[6][3];  // dU G: 6 x 3
        for (int a = 0; a < 6; ++a) {
            __m256 row[6];
            for (int b = 0; b < 6; ++b)
                row[b] = _mm256_loadu_ps(u + (a * 6 + b) * plane);
            for (int j = 0; j < 3; ++j) {
                __m256 acc = _mm256_mul_ps(row[0], _mm256_set1_ps(kG[0][j]));
                for (int b = 1; b < 6; ++b)
                    acc = _mm256_fmadd_ps(row[b], _mm256_set1_ps(kG[b][j]), acc);
                h[a][j] = acc;
            }
        }
        alignas(32) float out[9][8];
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
                __m256 acc = _mm256_mul_ps(h[0][j], _mm256_set1_ps(kG[0][i]));
                for (int a = 1; a < 6; ++a)
                    acc = _mm256_fmadd_ps(h[a][j], _mm256_set1_ps(kG[a][i]), acc);
                _mm256_store_ps(out[i * 3 + j], acc);
            }
        for (int l = 0; l < 8 && c0 + l < g.Cin; ++l) {
            float* dst = dw + (oc * g.Cin + c0 + l) * 9;
            for (int k = 0; k < 9; ++k)
                dst[k] = accum == Accum::Add ? dst[k] + out[k][l] : out[k][l];
        }
    });
}

// V[36][tc][Cp] = B^T d B for the tiles [t0, t0 + tc) of a group (tile numbers relative to the
// group's first image), from its blocked input Xb [img][Cp/8][Hb][Wb][8].
void transform_input(const float* Xb, const Geometry& g, int64_t t0, int64_t tc, float* V) {
    const int64_t CB = g.Cp / 8;
    parallel_for_each(CB * tc, [&](int64_t item) {
        const int64_t cb = item / tc, t = item % tc;
        int n, h0, w0;
        g.tile(t0 + t, n, h0, w0);
        const float* patch = Xb + ((int64_t(n) * CB + cb) * g.Hb + h0) * g.Wb * 8 + w0 * 8;
        __m256 d[36], tmp[36], o[36];
        for (int r = 0; r < 6; ++r)
            for (int s = 0; s < 6; ++s)
                d[r * 6 + s] = _mm256_loadu_ps(patch + (int64_t(r) * g.Wb + s) * 8);
        for (int s = 0; s < 6; ++s)
            input_1d(d + s, 6, tmp + s, 6);  // columns
        for (int r = 0; r < 6; ++r)
            input_1d(tmp + r * 6, 1, o + r * 6, 1);  // rows
        float* dst = V + t * g.Cp + cb * 8;
        for (int i = 0; i < 36; ++i)
            _mm256_storeu_ps(dst + i * tc * g.Cp, o[i]);
    });
}

// ---- one tile ----

// 36 transformed values of one 6x6 patch (8 channels) whose rows start row_stride floats apart
// (positions 8 floats apart); output i at dst + i * dst_stride.
inline void input_tile(const float* patch, int64_t row_stride, float* dst, int64_t dst_stride) {
    __m256 d[36], tmp[36], o[36];
    for (int r = 0; r < 6; ++r)
        for (int s = 0; s < 6; ++s)
            d[r * 6 + s] = _mm256_loadu_ps(patch + r * row_stride + s * 8);
    for (int s = 0; s < 6; ++s)
        input_1d(d + s, 6, tmp + s, 6);  // columns
    for (int r = 0; r < 6; ++r)
        input_1d(tmp + r * 6, 1, o + r * 6, 1);  // rows
    for (int i = 0; i < 36; ++i)
        _mm256_storeu_ps(dst + i * dst_stride, o[i]);
}

// The 4x4 outputs (8 channels) of one tile from its 36 GEMM results (src + i * src_stride),
// written as rows row_stride floats apart (positions 8 floats apart).
inline void output_tile(const float* src, int64_t src_stride, float* dst, int64_t row_stride) {
    __m256 m[36], tmp[24], o[16];
    for (int i = 0; i < 36; ++i)
        m[i] = _mm256_loadu_ps(src + i * src_stride);
    for (int s = 0; s < 6; ++s)
        output_1d(m + s, 6, tmp + s, 6);  // columns: tmp is 4 x 6
    for (int r = 0; r < 4; ++r)
        output_1d(tmp + r * 6, 1, o + r * 4, 1);  // rows: o is 4 x 4
    for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s)
            _mm256_storeu_ps(dst + r * row_stride + s * 8, o[r * 4 + s]);
}

// A dY A^T of one 4x4 dy tile (8 channels, rows row_stride apart) -> dst + i * dst_stride.
inline void grad_tile(const float* tile, int64_t row_stride, float* dst, int64_t dst_stride) {
    __m256 d[16], tmp[24], o[36];
    for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s)
            d[r * 4 + s] = _mm256_loadu_ps(tile + r * row_stride + s * 8);
    for (int s = 0; s < 4; ++s)
        grad_1d(d + s, 4, tmp + s, 4);  // columns: tmp is 6 x 4
    for (int r = 0; r < 6; ++r)
        grad_1d(tmp + r * 4, 1, o + r * 6, 1);  // rows: o is 6 x 6
    for (int i = 0; i < 36; ++i)
        _mm256_storeu_ps(dst + i * dst_stride, o[i]);
}

// M[xi][tc][OCp] = V[xi][tc][Cp] U[xi] for the points [xi0, xi1) and output panels [ob0, ob1).
void gemm_points(const Geometry& g, const float* V, const float* U, int64_t tc, int64_t xi,
                 int64_t ocb, float* M) {
    const float* b = U + (ocb * kPoints + xi) * g.Cp * 16;
    for (int64_t i0 = 0; i0 < tc; i0 += kGemmMR)
        gemm_tile(int(std::min<int64_t>(kGemmMR, tc - i0)), kGemmNR, int(g.Cp),
                  V + (xi * tc + i0) * g.Cp, g.Cp, 1, b, 16, M + (xi * tc + i0) * g.OCp + ocb * 16,
                  g.OCp, Accum::Overwrite);
}

// dU[xi] (+)= D[xi]^T V[xi] over tc tiles, rows oc [oc0, oc0 + 6).
void gemm_grad_points(const Geometry& g, const float* D, const float* V, int64_t tc, int64_t xi,
                      int64_t oc0, Accum acc, float* dU) {
    const int mr = int(std::min<int64_t>(kGemmMR, g.Cout - oc0));
    for (int64_t cb = 0; cb < g.Cp / 16; ++cb)
        gemm_tile(mr, kGemmNR, int(tc), D + xi * tc * g.OCp + oc0, 1, g.OCp,
                  V + xi * tc * g.Cp + cb * 16, g.Cp, dU + (xi * g.OCp + oc0) * g.Cp + cb * 16,
                  g.Cp, acc);
}

// Transformed filters of at most this many floats (9.4 MB) exist at once: larger layers
// (layer4: 38 MB in all) are done a group of output panels at a time.
constexpr int64_t kUGroupFloats = int64_t(kPoints) * 512 * 128;

int64_t panels_per_group(const Geometry& g) {
    return std::max<int64_t>(1, kUGroupFloats / (kPoints * g.Cp * 16));
}

// Small filters (U and a unit's V and M fit in L2) run "fused": each thread takes whole units of
// a few tile rows and does everything for them in its own buffers, without a barrier.
constexpr int64_t kFusedMaxUFloats = kPoints * 128 * 128;  // 2.4 MB
constexpr int64_t kFusedUnitFloats = int64_t(192) << 10;   // V + M of a unit: 768 KB

bool use_fused(const Geometry& g) {
    return kPoints * g.Cp * g.OCp <= kFusedMaxUFloats;
}

// Tile rows per unit: as many as fit the budget (up to twice it when that makes the unit's tile
// count a multiple of 6, so the GEMM has no short micro-tile: layer1's 27 tiles a row go 2 rows
// at a time, layer2's 14 three at a time).
int fused_rows(const Geometry& g) {
    const int64_t tiles = kFusedUnitFloats / (kPoints * (g.Cp + g.OCp));
    const int fit = int(std::max<int64_t>(1, tiles / g.tiles_w));
    const int most = int(std::max<int64_t>(1, 2 * tiles / g.tiles_w));
    int best = fit;
    double best_waste = 1.0;
    for (int r = 1; r <= most; ++r) {
        const int64_t t = int64_t(r) * g.tiles_w, padded = ceil_div(t, kGemmMR) * kGemmMR;
        const double waste = double(padded - t) / double(padded);
        if (waste < best_waste - 1e-9 || (waste <= best_waste + 1e-9 && r <= fit && r > best)) {
            best = r;
            best_waste = waste;
        }
    }
    return best;
}

struct UnitBuffers {
    std::vector<float> V, M, Xr, Yr;
};

// The fused forward of the tile rows [r0, r0 + nr) (global row = n * tiles_h + ty).
void forward_unit(const Geometry& g, const float* x, const float* U, const ConvEpilogue& epi,
                  int64_t r0, int nr, UnitBuffers& ub, float* y) {
    const int64_t CB = g.Cp / 8, OB = g.OCp / 8, OCB = g.OCp / 16, tc = int64_t(nr) * g.tiles_w;
    const int64_t in_img = int64_t(g.Cin) * g.H * g.W, out_img = int64_t(g.Cout) * g.H * g.W;
    auto grow = [](std::vector<float>& v, int64_t n) {
        if (int64_t(v.size()) < n) v.resize(size_t(n));
        return v.data();
    };
    float* V = grow(ub.V, kPoints * tc * g.Cp);
    float* M = grow(ub.M, kPoints * tc * g.OCp);
    float* Xr = grow(ub.Xr, int64_t(nr) * CB * 6 * g.Wb * 8);   // [row][cb][6][Wb][8]
    float* Yr = grow(ub.Yr, int64_t(nr) * OB * 4 * g.OWb * 8);  // [row][ob][4][OWb][8]
    for (int ri = 0; ri < nr; ++ri) {
        const int64_t row = r0 + ri, n = row / g.tiles_h;
        const int ty = int(row % g.tiles_h);
        for (int64_t cb = 0; cb < CB; ++cb)
            for (int i = 0; i < 6; ++i)
                block_row(x + n * in_img, g.Cin, g.H, g.W, 1, int(cb * 8), 4 * ty - 1 + i, g.Wb,
                          Xr + ((ri * CB + cb) * 6 + i) * g.Wb * 8);
        for (int64_t cb = 0; cb < CB; ++cb)
            for (int tx = 0; tx < g.tiles_w; ++tx) {
                const int64_t t = int64_t(ri) * g.tiles_w + tx;
                input_tile(Xr + (ri * CB + cb) * 6 * g.Wb * 8 + tx * 32, int64_t(g.Wb) * 8,
                           V + t * g.Cp + cb * 8, tc * g.Cp);
            }
    }
    for (int64_t xi = 0; xi < kPoints; ++xi)
        for (int64_t ocb = 0; ocb < OCB; ++ocb)
            gemm_points(g, V, U, tc, xi, ocb, M);
    for (int ri = 0; ri < nr; ++ri) {
        for (int64_t ob = 0; ob < OB; ++ob)
            for (int tx = 0; tx < g.tiles_w; ++tx) {
                const int64_t t = int64_t(ri) * g.tiles_w + tx;
                output_tile(M + t * g.OCp + ob * 8, tc * g.OCp,
                            Yr + (ri * OB + ob) * 4 * g.OWb * 8 + tx * 32, int64_t(g.OWb) * 8);
            }
        const int64_t row = r0 + ri, n = row / g.tiles_h;
        const int ty = int(row % g.tiles_h);
        for (int64_t ob = 0; ob < OB; ++ob)
            for (int r = 0; r < 4 && 4 * ty + r < g.H; ++r)
                unblock_row(Yr + ((ri * OB + ob) * 4 + r) * g.OWb * 8, g.Cout, g.H, g.W,
                            int(ob * 8), 4 * ty + r, epi,
                            epi.residual ? epi.residual + n * out_img : nullptr, y + n * out_img);
    }
}

// The fused backward-weight of the tile rows [r0, r0 + nr): dU += D^T V.
void backward_weight_unit(const Geometry& g, const float* x, const float* dy, int64_t r0, int nr,
                          UnitBuffers& ub, float* dU) {
    const int64_t CB = g.Cp / 8, OB = g.OCp / 8, tc = int64_t(nr) * g.tiles_w;
    const int64_t in_img = int64_t(g.Cin) * g.H * g.W, out_img = int64_t(g.Cout) * g.H * g.W;
    auto grow = [](std::vector<float>& v, int64_t n) {
        if (int64_t(v.size()) < n) v.resize(size_t(n));
        return v.data();
    };
    float* V = grow(ub.V, kPoints * tc * g.Cp);
    float* D = grow(ub.M, kPoints * tc * g.OCp);
    float* Xr = grow(ub.Xr, int64_t(nr) * CB * 6 * g.Wb * 8);
    float* Dr = grow(ub.Yr, int64_t(nr) * OB * 4 * g.OWb * 8);
    for (int ri = 0; ri < nr; ++ri) {
        const int64_t row = r0 + ri, n = row / g.tiles_h;
        const int ty = int(row % g.tiles_h);
        for (int64_t cb = 0; cb < CB; ++cb)
            for (int i = 0; i < 6; ++i)
                block_row(x + n * in_img, g.Cin, g.H, g.W, 1, int(cb * 8), 4 * ty - 1 + i, g.Wb,
                          Xr + ((ri * CB + cb) * 6 + i) * g.Wb * 8);
        for (int64_t ob = 0; ob < OB; ++ob)
            for (int i = 0; i < 4; ++i)
                block_row(dy + n * out_img, g.Cout, g.H, g.W, 0, int(ob * 8), 4 * ty + i, g.OWb,
                          Dr + ((ri * OB + ob) * 4 + i) * g.OWb * 8);
        for (int tx = 0; tx < g.tiles_w; ++tx) {
            const int64_t t = int64_t(ri) * g.tiles_w + tx;
            for (int64_t cb = 0; cb < CB; ++cb)
                input_tile(Xr + (ri * CB + cb) * 6 * g.Wb * 8 + tx * 32, int64_t(g.Wb) * 8,
                           V + t * g.Cp + cb * 8, tc * g.Cp);
            for (int64_t ob = 0; ob < OB; ++ob)
                grad_tile(Dr + (ri * OB + ob) * 4 * g.OWb * 8 + tx * 32, int64_t(g.OWb) * 8,
                          D + t * g.OCp + ob * 8, tc * g.OCp);
        }
    }
    for (int64_t xi = 0; xi < kPoints; ++xi)
        for (int64_t oc0 = 0; oc0 < g.Cout; oc0 += kGemmMR)
            gemm_grad_points(g, D, V, tc, xi, oc0, Accum::Add, dU);
}

}  // namespace

bool winograd_applies(const Conv2dParams& p) {
    return p.KH == 3 && p.KW == 3 && p.stride == 1 && p.pad == 1;
}

void winograd_forward(const Conv2dParams& p, const float* x, const float* w,
                      bool transposed_flipped, const ConvEpilogue& epi, float* y) {
    const Geometry g = geometry(p);
    const int64_t OCB = g.OCp / 16, OB = g.OCp / 8;
    const int64_t in_img = int64_t(g.Cin) * g.H * g.W, out_img = int64_t(g.Cout) * g.H * g.W;
    if (use_fused(g)) {
        float* U = scratch_floats(0, kPoints * g.Cp * g.OCp);
        transform_weights(w, transposed_flipped, g, 0, OCB, U);
        const int R = fused_rows(g);
        const int64_t rows = int64_t(g.N) * g.tiles_h, units = ceil_div(rows, R);
        parallel_for(units, [&](int64_t u0, int64_t u1) {
            thread_local UnitBuffers ub;
            for (int64_t u = u0; u < u1; ++u)
                forward_unit(g, x, U, epi, u * R, int(std::min<int64_t>(R, rows - u * R)), ub, y);
        });
        return;
    }
    // Three phases per chunk of tiles, for one group of output panels at a time (the input
    // transform is redone per group: cheap next to the GEMMs of these wide layers).
    const int64_t group_panels = panels_per_group(g);
    float* U = scratch_floats(0, kPoints * g.Cp * 16 * std::min(group_panels, OCB));
    float* V = scratch_floats(1, kPoints * g.chunk * g.Cp);
    float* M = scratch_floats(2, kPoints * g.chunk * g.OCp);
    float* Xb = scratch_floats(3, g.group * g.Cp * g.Hb * g.Wb);
    float* Yb = scratch_floats(4, g.group * g.OCp * g.OHb * g.OWb);
    const int64_t per_image = int64_t(g.tiles_h) * g.tiles_w;
    for (int64_t ocb0 = 0; ocb0 < OCB; ocb0 += group_panels) {
        const int64_t nb = std::min(group_panels, OCB - ocb0);
        transform_weights(w, transposed_flipped, g, ocb0, nb, U);
        for (int n0 = 0; n0 < g.N; n0 += g.group) {
            const int ng = std::min(g.group, g.N - n0);
            to_blocked(x + n0 * in_img, ng, g.Cin, g.H, g.W, 1, g.Cp, g.Hb, g.Wb, Xb);
            const int64_t Tg = ng * per_image;
            for (int64_t t0 = 0; t0 < Tg; t0 += g.chunk) {
                const int64_t tc = std::min(g.chunk, Tg - t0);
                transform_input(Xb, g, t0, tc, V);
                parallel_for_each(kPoints * nb, [&](int64_t item) {
                    const int64_t xi = item / nb, local = item % nb, ocb = ocb0 + local;
                    const float* b = U + (local * kPoints + xi) * g.Cp * 16;
                    for (int64_t i0 = 0; i0 < tc; i0 += kGemmMR)
                        gemm_tile(int(std::min<int64_t>(kGemmMR, tc - i0)), kGemmNR, int(g.Cp),
                                  V + (xi * tc + i0) * g.Cp, g.Cp, 1, b, 16,
                                  M + (xi * tc + i0) * g.OCp + ocb * 16, g.OCp, Accum::Overwrite);
                });
                parallel_for_each(2 * nb * tc, [&](int64_t item) {
                    const int64_t ob = 2 * ocb0 + item / tc, t = item % tc;
                    __m256 m[36], tmp[24], o[16];
                    const float* src = M + t * g.OCp + ob * 8;
                    for (int i = 0; i < 36; ++i)
                        m[i] = _mm256_loadu_ps(src + i * tc * g.OCp);
                    for (int s = 0; s < 6; ++s)
                        output_1d(m + s, 6, tmp + s, 6);  // columns: tmp is 4 x 6
                    for (int r = 0; r < 4; ++r)
                        output_1d(tmp + r * 6, 1, o + r * 4, 1);  // rows: o is 4 x 4
                    int n, h0, w0;
                    g.tile(t0 + t, n, h0, w0);
                    float* dst = Yb + ((int64_t(n) * OB + ob) * g.OHb + h0) * g.OWb * 8 + w0 * 8;
                    for (int r = 0; r < 4; ++r)
                        for (int s = 0; s < 4; ++s)
                            _mm256_storeu_ps(dst + (int64_t(r) * g.OWb + s) * 8, o[r * 4 + s]);
                });
            }
            from_blocked(Yb, ng, g.Cout, g.H, g.W, g.OCp, g.OHb, g.OWb, 2 * ocb0, 2 * (ocb0 + nb),
                         epi, epi.residual ? epi.residual + n0 * out_img : nullptr,
                         y + n0 * out_img);
        }
    }
}

void winograd_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                              Accum accum) {
    const Geometry g = geometry(p);
    const int64_t CB16 = g.Cp / 16;
    const int64_t in_img = int64_t(g.Cin) * g.H * g.W, out_img = int64_t(g.Cout) * g.H * g.W;
    const int64_t per_image = int64_t(g.tiles_h) * g.tiles_w;
    if (use_fused(g)) {
        // Each thread sums its units into a private dU; the partials are added in thread order.
        float* dU = scratch_floats(0, kPoints * g.OCp * g.Cp);
        const int R = fused_rows(g);
        const int64_t rows = int64_t(g.N) * g.tiles_h, units = ceil_div(rows, R);
        const int threads = int(std::min<int64_t>(thread_count(), units));
        const int64_t du_floats = kPoints * g.OCp * g.Cp;
        float* partial = scratch_floats(1, int64_t(threads) * du_floats);
        parallel_for_each(threads, [&](int64_t t) {
            thread_local UnitBuffers ub;
            float* mine = partial + t * du_floats;
            std::fill(mine, mine + du_floats, 0.f);
            for (int64_t u = units * t / threads; u < units * (t + 1) / threads; ++u)
                backward_weight_unit(g, x, dy, u * R, int(std::min<int64_t>(R, rows - u * R)), ub,
                                     mine);
        });
        parallel_for(du_floats, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) {
                float s = partial[i];
                for (int t = 1; t < threads; ++t)
                    s += partial[t * du_floats + i];
                dU[i] = s;
            }
        });
        transform_weight_grad(g, dU, 0, g.Cout, g.OCp, dw, accum);
        return;
    }
    // Three phases per chunk of tiles, for one group of output channels at a time (dU of a group
    // only; the input transform is redone per group).
    const int64_t group_rows = panels_per_group(g) * 16;
    const int64_t max_rows = std::min<int64_t>(group_rows, g.OCp);
    float* dU = scratch_floats(0, kPoints * max_rows * g.Cp);
    float* V = scratch_floats(1, kPoints * g.chunk * g.Cp);
    float* D = scratch_floats(2, kPoints * g.chunk * max_rows);
    float* Xb = scratch_floats(3, g.group * g.Cp * g.Hb * g.Wb);
    float* Db = scratch_floats(4, g.group * g.OCp * g.OHb * g.OWb);
    const int64_t OB = g.OCp / 8;
    for (int64_t oc_begin = 0; oc_begin < g.Cout; oc_begin += group_rows) {
        const int64_t oc_end = std::min<int64_t>(g.Cout, oc_begin + group_rows);
        const int64_t rows = oc_end - oc_begin, Dw = round_up(rows, 8), ob0 = oc_begin / 8;
        const int64_t OCG = ceil_div(rows, kGemmMR);
        bool first = true;
        for (int n0 = 0; n0 < g.N; n0 += g.group) {
            const int ng = std::min(g.group, g.N - n0);
            to_blocked(x + n0 * in_img, ng, g.Cin, g.H, g.W, 1, g.Cp, g.Hb, g.Wb, Xb);
            to_blocked(dy + n0 * out_img, ng, g.Cout, g.H, g.W, 0, g.OCp, g.OHb, g.OWb, Db);
            const int64_t Tg = ng * per_image;
            for (int64_t t0 = 0; t0 < Tg; t0 += g.chunk) {
                const int64_t tc = std::min(g.chunk, Tg - t0);
                transform_input(Xb, g, t0, tc, V);
                parallel_for_each((Dw / 8) * tc, [&](int64_t item) {
                    const int64_t ob = ob0 + item / tc, t = item % tc;
                    int n, h0, w0;
                    g.tile(t0 + t, n, h0, w0);
                    grad_tile(Db + ((int64_t(n) * OB + ob) * g.OHb + h0) * g.OWb * 8 + w0 * 8,
                              int64_t(g.OWb) * 8, D + t * Dw + (ob - ob0) * 8, tc * Dw);
                });
                const Accum acc = first ? Accum::Overwrite : Accum::Add;
                first = false;
                parallel_for_each(kPoints * OCG, [&](int64_t item) {
                    const int64_t xi = item / OCG, r0 = (item % OCG) * kGemmMR;
                    const int mr = int(std::min<int64_t>(kGemmMR, rows - r0));
                    for (int64_t cb = 0; cb < CB16; ++cb)
                        gemm_tile(mr, kGemmNR, int(tc), D + xi * tc * Dw + r0, 1, Dw,
                                  V + xi * tc * g.Cp + cb * 16, g.Cp,
                                  dU + (xi * rows + r0) * g.Cp + cb * 16, g.Cp, acc);
                });
            }
        }
        transform_weight_grad(g, dU, oc_begin, oc_end, rows, dw, accum);
    }
}

}  // namespace gnet::cpu_fast
