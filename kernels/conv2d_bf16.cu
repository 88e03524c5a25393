// conv2d_bf16 GPU twin: implicit GEMMs on tensor cores. See conv2d_bf16.h for the passes.
//
// One kernel template, conv_bf16_gemm<P, Vec>, computes a 64 x 64 tile of C (M x N) = A (M x K) *
// B (K x N) per block of 4 warps; each warp owns 32 x 32 of it as 2 x 4 mma.sync m16n8k16 tiles
// (32 float accumulators per thread). K advances 32 at a time through a 3-stage cp.async pipeline:
// while the warps multiply stage s, the copies of the next two steps are in flight.
//
// Where the operands' contiguous axis lies decides the shared-memory tile and the ldmatrix form:
//   forward, backward_data  A and B contiguous along K (x / dy channels, w / wt rows):
//                           tiles [64 rows][32 k], ldmatrix              ("k-major")
//   backward_weight         A = dy^T contiguous along M (output channels), B = x gathered
//                           contiguous along N (input channels): tiles [32 k][64], ldmatrix.trans
// Rows are padded by 8 bf16 (80 or 144 bytes), so the eight 16-byte rows an ldmatrix phase
// reads fall in distinct banks. With Vec (channel counts divisible by 8) every 8 consecutive k
// (or m, n) are one 16-byte cp.async of contiguous channels of one tap, zero-filled outside the
// image and the matrix; otherwise elements are gathered one by one (awkward shapes, tests).
//
// Each thread loads the same rows of A and B at every K step (two 16-byte chunks of each), so
// the decomposition of its rows into (image, y, x) or (tap, channel) is done once, not per step.
//
// Epilogues: forward / backward_data round the float accumulators to bf16 and store pairs of
// channels as one 32-bit word; forward optionally reduces the tile's per-channel sum and sum of
// squares (warp shuffles, then the two warp rows through shared memory) into one partial per
// 64-row tile, which conv_bf16_stats_reduce sums in tile order. backward_weight splits K over
// blockIdx.z into float slices in `workspace`, summed in slice order by conv_bf16_sum_slices.
#include "kernels/conv2d_bf16.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"

#if defined(__CUDA_ARCH__)
#define GNET_UNROLL _Pragma("unroll")
#else
#define GNET_UNROLL
#endif

namespace gnet::gpu {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32;  // block tile and K step
constexpr int kStages = 3;                   // cp.async pipeline depth
constexpr int kThreads = 128;                // 4 warps, 2 x 2 over the tile
constexpr int kRowPad = 8;                   // bf16 of padding per shared-memory row
// backward_weight aims for this many blocks (4 per SM of a 132-SM H100): a constant, so the split
// of K, and with it the rounding of dw, does not depend on the GPU that runs it.
constexpr int kTargetBlocks = 528;
constexpr int kMinStepsPerSplit = 16;

enum class Pass { Forward, BackwardData, BackwardWeight };

struct GemmArgs {
    Conv2dParams p;
    int M, N, K;
    int steps_per_split;   // K steps of one blockIdx.z slice
    const Bf16* a;         // x (forward), dy (backward_data, backward_weight)
    const Bf16* b;         // w (forward), wt (backward_data), x (backward_weight)
    Bf16* out_bf16;        // y or dx
    float* out_float;      // dw (one slice) or the slices in the workspace
    bool add;              // out_float += (backward_weight without a split, Accum::Add)
    float* stats_partial;  // forward: (tiles along M, 2, N) per-tile sums, or null
};

// Shared memory of one pipeline stage.
template <Pass P>
struct Stage {
    static constexpr bool kMajor = P != Pass::BackwardWeight;
    static constexpr int kRows = kMajor ? kBM : kBK;
    static constexpr int kCols = (kMajor ? kBK : kBM) + kRowPad;
    Bf16 a[kRows][kCols];
    Bf16 b[kRows][kCols];
};

// Where a thread's two A chunks and two B chunks come from, fixed for the whole K loop.
// k-major: chunk j is row (tid / 4 + 32 j), k offset 8 (tid % 4).
// backward_weight: chunk j is k row (tid / 8 + 16 j), column offset 8 (tid % 8).
struct RowInfo {
    int img, y0,
        x0;      // forward: image, oh*s - pad, ow*s - pad; backward_data: image, h + pad, w + pad
    bool valid;  // the row exists (m < M or n < N)
};

struct TapInfo {  // backward_weight's B chunk: a column n = tap * C + c
    int kh, kw, c;
    bool valid;
};

__device__ __forceinline__ RowInfo pixel_row(const Conv2dParams& p, int m, int M, bool forward) {
    RowInfo r{};
    r.valid = m < M;
    if (!r.valid) return r;
    const int w = forward ? p.OW : p.W, h = forward ? p.OH : p.H;
    const int px = m % w, t = m / w;
    const int py = t % h;
    r.img = t / h;
    if (forward) {
        r.y0 = py * p.stride - p.pad;
        r.x0 = px * p.stride - p.pad;
    } else {
        r.y0 = py + p.pad;
        r.x0 = px + p.pad;
    }
    return r;
}

// The address of A(m, k) of the k-major passes, or null where it is zero (padding, a tap that
// does not reach this pixel, beyond K). k and the channel it names: k = tap * channels + ch.
template <Pass P>
__device__ __forceinline__ const Bf16* a_element(const GemmArgs& g, const RowInfo& r, int k) {
    const Conv2dParams& p = g.p;
    if (!r.valid || k >= g.K) return nullptr;
    const int channels = P == Pass::Forward ? p.C : p.OC;
    const int tap = k / channels, ch = k - tap * channels;
    const int kh = tap / p.KW, kw = tap - kh * p.KW;
    if constexpr (P == Pass::Forward) {
        const int iy = r.y0 + kh, ix = r.x0 + kw;
        if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) return nullptr;
        return g.a + ((int64_t(r.img) * p.H + iy) * p.W + ix) * p.C + ch;
    } else {
        const int ty = r.y0 - kh, tx = r.x0 - kw;  // = oh * stride, ow * stride when reached
        if (ty < 0 || tx < 0 || ty % p.stride || tx % p.stride) return nullptr;
        const int oy = ty / p.stride, ox = tx / p.stride;
        if (oy >= p.OH || ox >= p.OW) return nullptr;
        return g.a + ((int64_t(r.img) * p.OH + oy) * p.OW + ox) * p.OC + ch;
    }
}

// backward_weight's B(k, n) = x at pixel k shifted by n's tap, or null where zero.
__device__ __forceinline__ const Bf16* x_at_pixel(const GemmArgs& g, int k, int kh, int kw, int c) {
    const Conv2dParams& p = g.p;
    if (k >= g.K) return nullptr;
    const int ox = k % p.OW, t = k / p.OW;
    const int oy = t % p.OH, img = t / p.OH;
    const int iy = oy * p.stride - p.pad + kh, ix = ox * p.stride - p.pad + kw;
    if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) return nullptr;
    return g.b + ((int64_t(img) * p.H + iy) * p.W + ix) * p.C + c;
}

__device__ __forceinline__ TapInfo tap_column(const Conv2dParams& p, int n, int N) {
    TapInfo t{};
    t.valid = n < N;
    if (!t.valid) return t;
    const int tap = n / p.C;
    t.c = n - tap * p.C;
    t.kh = tap / p.KW;
    t.kw = tap - t.kh * p.KW;
    return t;
}

__device__ __forceinline__ Bf16 load_or_zero(const Bf16* p) {
    return p ? *p : Bf16{0};
}

// 8 bf16 into shared memory: one cp.async from `src` (contiguous, 16-byte aligned, or null for
// zeros) when Vec, else element by element through `element(j)`.
template <bool Vec, class Element>
__device__ __forceinline__ void load_chunk(Bf16* dst, const Bf16* src, Element element) {
    if constexpr (Vec) {
        mma::cp_async_16(dst, src, src != nullptr);
    } else {
        (void)src;
        GNET_UNROLL
        for (int j = 0; j < 8; ++j)
            dst[j] = load_or_zero(element(j));
    }
}

template <Pass P, bool Vec>
__global__ void __launch_bounds__(kThreads) conv_bf16_gemm(GemmArgs g) {
    constexpr bool kMajor = Stage<P>::kMajor;
    __shared__ __align__(128) Stage<P> smem[kStages];
    __shared__ float stat_rows[2][2][kBN];  // forward statistics: [warp row][sum, sum_sq][column]

    const Conv2dParams& p = g.p;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
    const int total_steps = int((g.K + kBK - 1) / kBK);
    const int step_begin = blockIdx.z * g.steps_per_split;
    const int step_end = step_begin + g.steps_per_split;
    const int steps = (step_end < total_steps ? step_end : total_steps) - step_begin;

    // This thread's load positions (see RowInfo / TapInfo).
    RowInfo a_rows[2];
    const Bf16* b_rows[2] = {nullptr, nullptr};
    TapInfo b_taps[2];
    const int kc = kMajor ? (tid % 4) * 8 : (tid % 8) * 8;  // k (k-major) or m/n offset in chunk
    GNET_UNROLL
    for (int j = 0; j < 2; ++j) {
        if constexpr (kMajor) {
            const int row = tid / 4 + 32 * j;
            a_rows[j] = pixel_row(p, m0 + row, g.M, P == Pass::Forward);
            b_rows[j] = n0 + row < g.N ? g.b + int64_t(n0 + row) * g.K : nullptr;
        } else {
            b_taps[j] = tap_column(p, n0 + kc, g.N);
        }
    }

    auto load_stage = [&](int stage, int step) {
        const int k0 = (step_begin + step) * kBK;
        Stage<P>& s = smem[stage];
        GNET_UNROLL
        for (int j = 0; j < 2; ++j) {
            if constexpr (kMajor) {
                const int row = tid / 4 + 32 * j, k = k0 + kc;
                load_chunk<Vec>(&s.a[row][kc], a_element<P>(g, a_rows[j], k),
                                [&](int e) { return a_element<P>(g, a_rows[j], k + e); });
                const Bf16* brow = b_rows[j];
                load_chunk<Vec>(&s.b[row][kc], brow && k < g.K ? brow + k : nullptr, [&](int e) {
                    return brow && k + e < g.K ? brow + k + e : nullptr;
                });
            } else {
                const int krow = tid / 8 + 16 * j, k = k0 + krow;
                // A(m, k) = dy[pixel k][oc m]
                const int m = m0 + kc;
                const Bf16* dy = k < g.K ? g.a + int64_t(k) * p.OC : nullptr;
                load_chunk<Vec>(&s.a[krow][kc], dy && m < g.M ? dy + m : nullptr,
                                [&](int e) { return dy && m + e < g.M ? dy + m + e : nullptr; });
                const TapInfo& t = b_taps[j];
                load_chunk<Vec>(&s.b[krow][kc],
                                t.valid ? x_at_pixel(g, k, t.kh, t.kw, t.c) : nullptr, [&](int e) {
                                    const TapInfo te = tap_column(p, n0 + kc + e, g.N);
                                    return te.valid ? x_at_pixel(g, k, te.kh, te.kw, te.c)
                                                    : nullptr;
                                });
            }
        }
    };

    float acc[2][4][4] = {};

    GNET_UNROLL
    for (int s = 0; s < kStages - 1; ++s) {
        if (s < steps) load_stage(s, s);
        mma::cp_async_commit();
    }
    for (int it = 0; it < steps; ++it) {
        mma::cp_async_wait<kStages - 2>();
        __syncthreads();  // stage it is complete for all threads; stage it-1 is free again
        const int next = it + kStages - 1;
        if (next < steps) load_stage(next % kStages, next);
        mma::cp_async_commit();

        const Stage<P>& s = smem[it % kStages];
        GNET_UNROLL
        for (int kk = 0; kk < kBK; kk += 16) {
            uint32_t a[2][4], b[4][2];
            const int r8 = lane % 8, i = lane / 8;
            GNET_UNROLL
            for (int mt = 0; mt < 2; ++mt) {
                if constexpr (kMajor)
                    mma::ldmatrix_x4(a[mt],
                                     &s.a[wm + mt * 16 + r8 + (i % 2) * 8][kk + (i / 2) * 8]);
                else
                    mma::ldmatrix_x4_trans(a[mt],
                                           &s.a[kk + r8 + (i / 2) * 8][wm + mt * 16 + (i % 2) * 8]);
            }
            GNET_UNROLL
            for (int np = 0; np < 2; ++np) {
                uint32_t r[4];
                if constexpr (kMajor)
                    mma::ldmatrix_x4(r, &s.b[wn + np * 16 + r8 + (i / 2) * 8][kk + (i % 2) * 8]);
                else
                    mma::ldmatrix_x4_trans(r,
                                           &s.b[kk + r8 + (i % 2) * 8][wn + np * 16 + (i / 2) * 8]);
                b[2 * np][0] = r[0];
                b[2 * np][1] = r[1];
                b[2 * np + 1][0] = r[2];
                b[2 * np + 1][1] = r[3];
            }
            GNET_UNROLL
            for (int mt = 0; mt < 2; ++mt)
                GNET_UNROLL
            for (int nt = 0; nt < 4; ++nt)
                mma::mma_bf16_16816(acc[mt][nt], a[mt], b[nt]);
        }
    }
    mma::cp_async_wait<0>();  // nothing may be left in flight when the block exits

    // Epilogue. This thread holds rows wm + 16 mt + g (+ 8) and columns wn + 8 nt + 2t (+ 1).
    const int gq = lane / 4, tq = lane % 4;
    GNET_UNROLL
    for (int mt = 0; mt < 2; ++mt)
        GNET_UNROLL
    for (int half = 0; half < 2; ++half) {
        const int m = m0 + wm + mt * 16 + gq + half * 8;
        if (m >= g.M) continue;
        GNET_UNROLL
        for (int nt = 0; nt < 4; ++nt) {
            const int n = n0 + wn + nt * 8 + 2 * tq;
            const float v0 = acc[mt][nt][2 * half], v1 = acc[mt][nt][2 * half + 1];
            if constexpr (P == Pass::BackwardWeight) {
                float* out = g.out_float + int64_t(blockIdx.z) * g.M * g.N + int64_t(m) * g.N + n;
                if (n < g.N) out[0] = g.add ? out[0] + v0 : v0;
                if (n + 1 < g.N) out[1] = g.add ? out[1] + v1 : v1;
            } else {
                Bf16* out = g.out_bf16 + int64_t(m) * g.N + n;
                if (n + 1 < g.N && g.N % 2 == 0) {
                    *reinterpret_cast<uint32_t*>(out) = pack_bf16x2(v0, v1);
                } else {
                    if (n < g.N) out[0] = to_bf16(v0);
                    if (n + 1 < g.N) out[1] = to_bf16(v1);
                }
            }
        }
    }

    if constexpr (P == Pass::Forward) {
        if (!g.stats_partial) return;
        // Column sums over this warp's 32 rows (rows beyond M hold zeros: their A rows were zero).
        GNET_UNROLL
        for (int nt = 0; nt < 4; ++nt)
            GNET_UNROLL
        for (int j = 0; j < 2; ++j) {
            float s = 0.0f, q = 0.0f;
            GNET_UNROLL
            for (int mt = 0; mt < 2; ++mt)
                GNET_UNROLL
            for (int half = 0; half < 2; ++half) {
                const float v = acc[mt][nt][2 * half + j];
                s += v;
                q += v * v;
            }
            GNET_UNROLL
            for (int d = 4; d < 32; d *= 2) {
                s += __shfl_xor_sync(0xffffffffu, s, d);
                q += __shfl_xor_sync(0xffffffffu, q, d);
            }
            if (gq == 0) {
                stat_rows[warp / 2][0][wn + nt * 8 + 2 * tq + j] = s;
                stat_rows[warp / 2][1][wn + nt * 8 + 2 * tq + j] = q;
            }
        }
        __syncthreads();
        if (tid < kBN && n0 + tid < g.N) {
            float* part = g.stats_partial + int64_t(blockIdx.x) * 2 * g.N;
            part[n0 + tid] = stat_rows[0][0][tid] + stat_rows[1][0][tid];
            part[g.N + n0 + tid] = stat_rows[0][1][tid] + stat_rows[1][1][tid];
        }
    }
}

// stats[c] = sum over tiles t of partial[t][0 or 1][c], in tile order, in double.
__global__ void conv_bf16_stats_reduce(const float* partial, int tiles, int channels, float* sum,
                                       float* sum_sq) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    double s = 0.0, q = 0.0;
    for (int t = 0; t < tiles; ++t) {
        s += partial[int64_t(t) * 2 * channels + c];
        q += partial[int64_t(t) * 2 * channels + channels + c];
    }
    sum[c] = float(s);
    sum_sq[c] = float(q);
}

// out[i] (=|+=) sum over slices s of slices[s][i], in slice order.
__global__ void conv_bf16_sum_slices(const float* slices, int splits, int64_t count, float* out,
                                     bool add) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float s = 0.0f;
    for (int k = 0; k < splits; ++k)
        s += slices[int64_t(k) * count + i];
    out[i] = add ? out[i] + s : s;
}

__global__ void conv_bf16_ihwo_kernel(const Bf16* w, int OC, int taps, int C, Bf16* wt) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // index into wt
    const int64_t total = int64_t(OC) * taps * C;
    if (i >= total) return;
    const int oc = int(i % OC);
    const int64_t ct = i / OC;
    const int t = int(ct % taps), c = int(ct / taps);
    wt[i] = w[(int64_t(oc) * taps + t) * C + c];
}

// The 1-channel stem (7x7/2, pad 3, 64 filters): a direct convolution, as a GEMM it would have
// K = 49 (two thirds of a second K step wasted) and gather every element one by one. A block
// computes 8 x 32 output pixels, one per thread, all 64 channels in registers; the input patch
// (21 x 69, bf16 widened to float) and the 64 x 49 weights are staged in shared memory, where every
// thread of a warp reads the same weight (a broadcast). Statistics: per channel, warp shuffles
// then the 8 warps through shared memory, one partial per block in `stats_partial`
// (tiles = blocks in grid order), reduced by conv_bf16_stats_reduce.
constexpr int kStemOC = 64, kStemK = 7, kStemStride = 2, kStemPad = 3;
constexpr int kStemRows = 8, kStemCols = 32;  // output pixels per block
constexpr int kStemPatchRows = (kStemRows - 1) * kStemStride + kStemK;
constexpr int kStemPatchCols = (kStemCols - 1) * kStemStride + kStemK;

__global__ void __launch_bounds__(kStemRows* kStemCols)
    conv_bf16_stem_kernel(Conv2dParams p, const Bf16* x, const Bf16* w, Bf16* y,
                          float* stats_partial) {
    __shared__ float patch[kStemPatchRows][kStemPatchCols];
    __shared__ float wt[kStemK * kStemK][kStemOC];  // [tap][oc]
    __shared__ float warp_stats[kStemRows * kStemCols / 32][2][kStemOC];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int img = blockIdx.z;
    const int oy0 = blockIdx.y * kStemRows, ox0 = blockIdx.x * kStemCols;
    const int iy0 = oy0 * kStemStride - kStemPad, ix0 = ox0 * kStemStride - kStemPad;
    for (int i = tid; i < kStemPatchRows * kStemPatchCols; i += blockDim.x) {
        const int r = i / kStemPatchCols, c = i % kStemPatchCols;
        const int iy = iy0 + r, ix = ix0 + c;
        patch[r][c] = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W
                          ? to_float(x[(int64_t(img) * p.H + iy) * p.W + ix])
                          : 0.0f;
    }
    for (int i = tid; i < kStemOC * kStemK * kStemK; i += blockDim.x)
        wt[i % (kStemK * kStemK)][i / (kStemK * kStemK)] = to_float(w[i]);
    __syncthreads();

    const int ty = tid / kStemCols, tx = tid % kStemCols;
    const int oy = oy0 + ty, ox = ox0 + tx;
    const bool valid = oy < p.OH && ox < p.OW;
    float acc[kStemOC];
    GNET_UNROLL
    for (int oc = 0; oc < kStemOC; ++oc)
        acc[oc] = 0.0f;
    for (int kh = 0; kh < kStemK; ++kh)
        for (int kw = 0; kw < kStemK; ++kw) {
            const float v = patch[ty * kStemStride + kh][tx * kStemStride + kw];
            const float* wr = wt[kh * kStemK + kw];
            GNET_UNROLL
            for (int oc = 0; oc < kStemOC; ++oc)
                acc[oc] += v * wr[oc];
        }
    if (valid) {
        uint32_t* out =
            reinterpret_cast<uint32_t*>(y + ((int64_t(img) * p.OH + oy) * p.OW + ox) * kStemOC);
        GNET_UNROLL
        for (int oc = 0; oc < kStemOC; oc += 2)
            out[oc / 2] = pack_bf16x2(acc[oc], acc[oc + 1]);
    }
    if (!stats_partial) return;
    GNET_UNROLL
    for (int oc = 0; oc < kStemOC; ++oc) {
        float s = valid ? acc[oc] : 0.0f;
        float q = s * s;
        GNET_UNROLL
        for (int d = 1; d < 32; d *= 2) {
            s += __shfl_xor_sync(0xffffffffu, s, d);
            q += __shfl_xor_sync(0xffffffffu, q, d);
        }
        if (lane == 0) {
            warp_stats[warp][0][oc] = s;
            warp_stats[warp][1][oc] = q;
        }
    }
    __syncthreads();
    if (tid < kStemOC) {
        float s = 0.0f, q = 0.0f;
        for (int wi = 0; wi < kStemRows * kStemCols / 32; ++wi) {
            s += warp_stats[wi][0][tid];
            q += warp_stats[wi][1][tid];
        }
        const int64_t tile =
            (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
        stats_partial[tile * 2 * kStemOC + tid] = s;
        stats_partial[tile * 2 * kStemOC + kStemOC + tid] = q;
    }
}

bool is_stem(const Conv2dParams& p) {
    return p.C == 1 && p.OC == kStemOC && p.KH == kStemK && p.KW == kStemK &&
           p.stride == kStemStride && p.pad == kStemPad;
}

dim3 stem_grid(const Conv2dParams& p) {
    return dim3(unsigned(ceil_div(p.OW, kStemCols)), unsigned(ceil_div(p.OH, kStemRows)),
                unsigned(p.N));
}

void check_size(const Conv2dParams& p, const char* what) {
    // Tiles index M and N with int; 64-bit offsets are formed where elements are addressed.
    const int64_t M = std::max(int64_t(p.N) * p.OH * p.OW, int64_t(p.N) * p.H * p.W);
    const int64_t K = std::max(int64_t(p.KH) * p.KW * std::max(p.C, p.OC), M);
    if (M > (int64_t(1) << 31) - kBM || K > (int64_t(1) << 31) - kBK)
        throw Error(std::string(what) + ": the convolution is too large for 32-bit tile indices");
}

struct Split {
    int splits, steps_per_split;
};

Split weight_split(const Conv2dParams& p) {
    const int64_t M = p.OC, N = int64_t(p.KH) * p.KW * p.C, K = int64_t(p.N) * p.OH * p.OW;
    const int64_t tiles = ceil_div(M, kBM) * ceil_div(N, kBN);
    const int64_t steps = ceil_div(K, kBK);
    int64_t splits = std::clamp<int64_t>(kTargetBlocks / std::max<int64_t>(tiles, 1), 1,
                                         std::max<int64_t>(steps / kMinStepsPerSplit, 1));
    const int64_t per = ceil_div(steps, splits);
    splits = ceil_div(steps, per);
    return Split{int(splits), int(per)};
}

template <Pass P, bool Vec>
void run_gemm(const GemmArgs& g, int splits, Stream stream) {
    const dim3 grid(unsigned(ceil_div(g.M, kBM)), unsigned(ceil_div(g.N, kBN)), unsigned(splits));
    launch<conv_bf16_gemm<P, Vec>>(grid, dim3(kThreads), 0, stream, g);
}

}  // namespace

bool bf16_supported() {
    int device = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaGetDeviceProperties(&prop, device) != cudaSuccess)
        return false;
    return prop.major >= 8;
}

size_t conv2d_bf16_forward_workspace_bytes(const Conv2dParams& p, bool stats) {
    if (!stats) return 0;
    if (is_stem(p)) {
        const dim3 g = stem_grid(p);
        return size_t(g.x) * g.y * g.z * 2 * kStemOC * sizeof(float);
    }
    return size_t(ceil_div(int64_t(p.N) * p.OH * p.OW, kBM)) * 2 * size_t(p.OC) * sizeof(float);
}

size_t conv2d_bf16_backward_weight_workspace_bytes(const Conv2dParams& p) {
    const Split s = weight_split(p);
    return s.splits > 1 ? size_t(s.splits) * size_t(p.w_size()) * sizeof(float) : 0;
}

void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y,
                         ChannelStats* stats, void* workspace, Stream stream) {
    check_size(p, "conv2d_bf16_forward");
    GemmArgs g{};
    g.p = p;
    g.M = p.N * p.OH * p.OW;
    g.N = p.OC;
    g.K = p.KH * p.KW * p.C;
    g.steps_per_split = int(ceil_div(g.K, kBK));
    g.a = x;
    g.b = w;
    g.out_bf16 = y;
    g.stats_partial = stats ? static_cast<float*>(workspace) : nullptr;
    if (stats && !workspace)
        throw Error("conv2d_bf16_forward: statistics need conv2d_bf16_forward_workspace_bytes");
    int tiles = int(ceil_div(g.M, kBM));
    if (is_stem(p)) {
        const dim3 grid = stem_grid(p);
        tiles = int(grid.x * grid.y * grid.z);
        launch<conv_bf16_stem_kernel>(grid, dim3(kStemRows * kStemCols), 0, stream, p, x, w, y,
                                      g.stats_partial);
    } else if (p.C % 8 == 0) {
        run_gemm<Pass::Forward, true>(g, 1, stream);
    } else {
        run_gemm<Pass::Forward, false>(g, 1, stream);
    }
    if (stats) {
        launch<conv_bf16_stats_reduce>(dim3(unsigned(ceil_div(p.OC, 128))), dim3(128), 0, stream,
                                       static_cast<const float*>(workspace), tiles, p.OC,
                                       stats->sum, stats->sum_sq);
    }
}

void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt, Bf16* dx,
                               Stream stream) {
    check_size(p, "conv2d_bf16_backward_data");
    GemmArgs g{};
    g.p = p;
    g.M = p.N * p.H * p.W;
    g.N = p.C;
    g.K = p.KH * p.KW * p.OC;
    g.steps_per_split = int(ceil_div(g.K, kBK));
    g.a = dy;
    g.b = wt;
    g.out_bf16 = dx;
    if (p.OC % 8 == 0)
        run_gemm<Pass::BackwardData, true>(g, 1, stream);
    else
        run_gemm<Pass::BackwardData, false>(g, 1, stream);
}

void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum, void* workspace, Stream stream) {
    check_size(p, "conv2d_bf16_backward_weight");
    const Split s = weight_split(p);
    GemmArgs g{};
    g.p = p;
    g.M = p.OC;
    g.N = p.KH * p.KW * p.C;
    g.K = p.N * p.OH * p.OW;
    g.steps_per_split = s.steps_per_split;
    g.a = dy;
    g.b = x;
    if (s.splits > 1) {
        if (!workspace)
            throw Error(
                "conv2d_bf16_backward_weight: needs "
                "conv2d_bf16_backward_weight_workspace_bytes of workspace");
        g.out_float = static_cast<float*>(workspace);
        g.add = false;
    } else {
        g.out_float = dw;
        g.add = accum == Accum::Add;
    }
    if (p.C % 8 == 0 && p.OC % 8 == 0)
        run_gemm<Pass::BackwardWeight, true>(g, s.splits, stream);
    else
        run_gemm<Pass::BackwardWeight, false>(g, s.splits, stream);
    if (s.splits > 1) {
        const int64_t count = p.w_size();
        launch<conv_bf16_sum_slices>(dim3(unsigned(ceil_div(count, 256))), dim3(256), 0, stream,
                                     static_cast<const float*>(workspace), s.splits, count, dw,
                                     accum == Accum::Add);
    }
}

void conv2d_bf16_ihwo(const Conv2dParams& p, const Bf16* w, Bf16* wt, Stream stream) {
    const int64_t count = p.w_size();
    launch<conv_bf16_ihwo_kernel>(dim3(unsigned(ceil_div(count, 256))), dim3(256), 0, stream, w,
                                  p.OC, p.KH * p.KW, p.C, wt);
}

}  // namespace gnet::gpu
