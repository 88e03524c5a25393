// conv2d GPU twin: implicit GEMM for forward, backward-data and backward-weight. See conv2d.h.
//
// One kernel template, conv2d_gemm_kernel<Tile, Op>, computes a BM x BN tile of C (M x N) =
// A (M x K) * B (K x N) per block of 256 threads, each thread a TM x TN register tile:
//   TileSquare 64 x 64, 4x4 per thread      TileWide 64 x 128, 4x8 per thread (long N)
// The wide tile is used when it still yields kTargetBlocks blocks (the early, large layers), the
// square one otherwise. K advances in steps of 16 through double-buffered shared memory: while
// the block multiplies tile t from one buffer, every thread already holds its share of tile t+1
// in registers and stores it into the other buffer afterwards, so one __syncthreads per step
// suffices. Neither A nor B exists in memory: the pass-specific Op gathers each element straight
// from x, w or dy (zero outside the image, beyond K, beyond M or N).
//
// Load patterns (e = tid + 256*i; R = 64 or 128 rows of the operand tile):
//   "k-fastest"   smem[e % 16][e / 16]: a thread keeps one k per step and R/16 rows/columns
//   "row-fastest" smem[e / R][e % R]:   a thread keeps one column n and R/16 values of k
//   forward          A = w (k-fastest, rows of w are contiguous)     B = x gathered (row-fastest)
//   backward_data    A = w^T (k-fastest)                              B = dy gathered (row-fastest)
//   backward_weight  A = dy (k-fastest: contiguous along pixels)      B = x gathered (k-fastest)
// Index decompositions by the kernel size use compile-time divisors for 1x1, 3x3 and 7x7
// (template KS) in forward and backward_weight, a runtime divisor otherwise; other runtime divisors
// in the K loop go through FastDiv (multiply-high + shift).
//
// blockIdx.z is the pass's third axis: unused by forward, the stride phase (ph, pw) of dx in
// backward_data (each phase a dense GEMM over only the taps that reach it: a 3x3/2 conv no longer
// multiplies the 3/4 structural zeros of a zero-stuffed dy), the K slice in backward_weight.
//
// backward_weight has a long K (N*OH*OW) and few output tiles: K is split over blockIdx.z into
// slices written to `workspace` (splits, OC, C*KH*KW) and summed in slice order by a second
// kernel, so the result does not depend on scheduling (bit-identical between runs).
#include "kernels/conv2d.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "kernels/launch.cuh"

// `#pragma unroll` for nvcc's device pass only (the host pass of these GNET_HD helpers would warn).
#if defined(__CUDA_ARCH__)
#define GNET_UNROLL _Pragma("unroll")
#else
#define GNET_UNROLL
#endif

namespace gnet::gpu {
namespace {

constexpr int kBK = 16;        // K step
constexpr int kThreads = 256;  // threads per block
constexpr int kPad = 4;        // smem row padding: fewer bank conflicts, rows stay 16-byte aligned
constexpr int kSub = 4;        // register tiles are made of 4x4 sub-tiles (float4 smem reads)

// A block tile: BM x BN outputs, each of the 256 threads owning TM x TN of them as (TM/4) x (TN/4)
// sub-tiles of 4x4 spaced BM/(TM/4) rows and BN/(TN/4) columns apart (so the float4 smem reads of
// a warp hit consecutive addresses). LA / LB: values of A / B a thread loads per K step.
template <int BM_, int BN_, int TM_, int TN_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, TM = TM_, TN = TN_;
    static constexpr int LA = BM * kBK / kThreads, LB = BN * kBK / kThreads;
    static constexpr int TCOLS = BN / TN;  // threads along N
    static constexpr int ROW_STEP = BM / (TM / kSub), COL_STEP = BN / (TN / kSub);
    static_assert((BM / TM) * (BN / TN) == kThreads, "one register tile per thread");
    static_assert(TM % kSub == 0 && TN % kSub == 0, "register tiles are 4x4 sub-tiles");
    static_assert(LA * kThreads == BM * kBK && LB * kThreads == BN * kBK, "whole tiles loaded");
    static_assert(kThreads % BM == 0 && kThreads % BN == 0, "row-fastest loads need it");
};
using TileSquare = Tile<64, 64, 4, 4>;  // 64x64, 4x4 per thread
using TileWide = Tile<64, 128, 4, 8>;   // 64x128, 4x8 per thread: for long N (many pixels)

template <int R>
using Smem = float[kBK][R + kPad];
static_assert((64 + kPad) % 4 == 0, "float4 reads of smem rows need 16-byte alignment");

// Aim for this many blocks when choosing the tile and the backward_weight split (two waves of
// a 132-SM H100; a constant, so the choice, and hence the rounding of dw, does not depend on the
// GPU that runs it). Every split-K slice gets at least kMinTilesPerSplit K steps.
constexpr int kTargetBlocks = 264;
constexpr int kMinTilesPerSplit = 16;

// Compile-time kernel size (KS > 0: KH == KW == KS) or runtime (KS == 0).
template <int KS>
struct KernelSize {
    int kh_kw_rt, kw_rt;
    GNET_HD int khw() const { return KS > 0 ? KS * KS : kh_kw_rt; }
    GNET_HD int kw() const { return KS > 0 ? KS : kw_rt; }
};

template <int KS>
KernelSize<KS> kernel_size(const Conv2dParams& p) {
    return KernelSize<KS>{p.KH * p.KW, p.KW};
}

GNET_HD int imax(int a, int b) {
    return a > b ? a : b;
}
GNET_HD bool inside(int i, int n) {
    return unsigned(i) < unsigned(n);
}

// Read-only load through the non-coherent cache on the device. The tile helpers and the pass
// structs are host-callable too, which lets their index maps be stepped through on a CPU.
GNET_HD float load_ro(const float* ptr) {
#if GNET_DEVICE_CODE
    return __ldg(ptr);
#else
    return *ptr;
#endif
}

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 by a multiply-high, an add and a shift
// (round-up reciprocal: shift = ceil(log2 d), mult = floor(2^32 (2^shift - d) / d) + 1).
struct FastDiv {
    uint32_t d, mult, shift;
    static GNET_HD FastDiv make(uint32_t d) {
        uint32_t shift = 0;
        while ((uint64_t(1) << shift) < d)
            ++shift;
        const uint64_t mult = ((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1;
        return FastDiv{d, uint32_t(mult), shift};
    }
    GNET_HD int div(int n) const {
#if GNET_DEVICE_CODE
        const uint32_t hi = __umulhi(uint32_t(n), mult);
#else
        const uint32_t hi = uint32_t((uint64_t(uint32_t(n)) * mult) >> 32);
#endif
        return int((hi + uint32_t(n)) >> shift);
    }
};

// "k-fastest": value i of a thread goes to row tid/16 + 16*i, k = tid % 16.
template <int R, int L>
GNET_HD void store_k_fastest(Smem<R>& s, const float (&r)[L], int tid) {
    static_assert(L * kThreads == R * kBK, "one operand tile");
    GNET_UNROLL
    for (int i = 0; i < L; ++i)
        s[tid % kBK][tid / kBK + i * (kThreads / kBK)] = r[i];
}

// "row-fastest": value i of a thread goes to row tid % R, k = tid/R + (256/R)*i.
template <int R, int L>
GNET_HD void store_row_fastest(Smem<R>& s, const float (&r)[L], int tid) {
    static_assert(L * kThreads == R * kBK, "one operand tile");
    GNET_UNROLL
    for (int i = 0; i < L; ++i)
        s[tid / R + i * (kThreads / R)][tid % R] = r[i];
}

// acc += As^T * Bs for this thread's TM x TN register tile.
template <class T>
GNET_HD void tile_multiply(const Smem<T::BM>& as, const Smem<T::BN>& bs, float (&acc)[T::TM][T::TN],
                           int tm, int tn) {
    GNET_UNROLL
    for (int kk = 0; kk < kBK; ++kk) {
        float av[T::TM], bv[T::TN];
        GNET_UNROLL
        for (int g = 0; g < T::TM / kSub; ++g) {
            const float4 a = *reinterpret_cast<const float4*>(&as[kk][g * T::ROW_STEP + tm * kSub]);
            av[g * kSub + 0] = a.x;
            av[g * kSub + 1] = a.y;
            av[g * kSub + 2] = a.z;
            av[g * kSub + 3] = a.w;
        }
        GNET_UNROLL
        for (int h = 0; h < T::TN / kSub; ++h) {
            const float4 b = *reinterpret_cast<const float4*>(&bs[kk][h * T::COL_STEP + tn * kSub]);
            bv[h * kSub + 0] = b.x;
            bv[h * kSub + 1] = b.y;
            bv[h * kSub + 2] = b.z;
            bv[h * kSub + 3] = b.w;
        }
        GNET_UNROLL
        for (int i = 0; i < T::TM; ++i)
            GNET_UNROLL
        for (int j = 0; j < T::TN; ++j)
            acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

// ---------------------------------------------------------------------------------------------
// forward: M = OC, N = N*OH*OW, K = C*KH*KW; C(oc, (n,oh,ow)) -> y(n, oc, oh, ow)
// ---------------------------------------------------------------------------------------------
template <class T, int KS>
struct ForwardOp {
    Conv2dParams p;
    KernelSize<KS> ks;
    const float* x;  // (N, C, H, W)
    const float* w;  // (OC, C, KH, KW) = A (M, K) row-major
    float* y;        // (N, OC, OH, OW)
    int M, N, K;

    struct Thread {
        int m0;
        bool n_ok;
        const float* x_img;
        int ih0, iw0;
    };

    GNET_HD int n_extent(int /*z*/) const { return N; }
    GNET_HD void k_range(int /*z*/, int /*tiles_per_split*/, int& begin, int& end) const {
        begin = 0;
        end = K;
    }

    GNET_HD Thread thread_state(int m0, int n0, int tid, int /*z*/) const {
        Thread t;
        t.m0 = m0;
        const int n = n0 + tid % T::BN;
        t.n_ok = n < N;
        const int nn = t.n_ok ? n : 0;
        const int ohw = p.OH * p.OW;
        const int img = nn / ohw, pix = nn - img * ohw;
        const int oh = pix / p.OW, ow = pix - oh * p.OW;
        t.x_img = x + int64_t(img) * p.C * p.H * p.W;
        t.ih0 = oh * p.stride - p.pad;
        t.iw0 = ow * p.stride - p.pad;
        return t;
    }

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[T::LA],
                      float (&rb)[T::LB]) const {
        const int ka = k0 + tid % kBK;
        GNET_UNROLL
        for (int i = 0; i < T::LA; ++i) {
            const int m = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (m < M && ka < K) ? load_ro(w + int64_t(m) * K + ka) : 0.f;
        }
        GNET_UNROLL
        for (int i = 0; i < T::LB; ++i) {
            const int k = k0 + tid / T::BN + i * (kThreads / T::BN);
            float v = 0.f;
            if (t.n_ok && k < K) {
                const int c = k / ks.khw(), r = k - c * ks.khw();
                const int kh = r / ks.kw(), kw = r - kh * ks.kw();
                const int ih = t.ih0 + kh, iw = t.iw0 + kw;
                if (inside(ih, p.H) && inside(iw, p.W))
                    v = load_ro(t.x_img + (int64_t(c) * p.H + ih) * p.W + iw);
            }
            rb[i] = v;
        }
    }

    GNET_HD void store(Smem<T::BM>& as, Smem<T::BN>& bs, const float (&ra)[T::LA],
                       const float (&rb)[T::LB], int tid) const {
        store_k_fastest<T::BM>(as, ra, tid);
        store_row_fastest<T::BN>(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kSub][kSub], int /*split*/) const {
        const int ohw = p.OH * p.OW;
        GNET_UNROLL
        for (int j = 0; j < kSub; ++j) {
            if (n + j >= N) continue;
            const int img = (n + j) / ohw, pix = (n + j) - img * ohw;
            GNET_UNROLL
            for (int i = 0; i < kSub; ++i)
                if (m + i < M) y[(int64_t(img) * M + (m + i)) * ohw + pix] = acc[i][j];
        }
    }
};

// ---------------------------------------------------------------------------------------------
// backward_data, split by stride phase: the dx pixels with h % s == ph and w % s == pw only meet
// the kernel taps kh == r_h (mod s), kw == r_w (mod s) with r_h = (ph + pad) % s, so every phase
// (blockIdx.z = ph*s + pw) is a dense GEMM of its own, with no multiply by a structural zero:
//   M = C, N = N*HH*WW (the phase's pixels), K = OC*TH*TW (its taps: kh = r_h + s*jh),
//   dx(n, c, ph + s*hh, pw + s*ww) = sum_{oc,jh,jw} w(oc, c, kh, kw) * dy(n, oc, bh + hh - jh,
//                                                                     bw + ww - jw)
// with bh = (ph + pad - r_h)/s (exact). Gather: each dx element is written by one thread.
// A phase with no taps (1x1/2: odd pixels) has K = 0 and writes zeros.
// ---------------------------------------------------------------------------------------------
struct DataPhase {
    int ph, pw;    // pixel phase
    int r_h, r_w;  // first kernel row/column of the phase
    int TH, TW;    // taps per axis
    int HH, WW;    // pixels per axis
    int bh, bw;    // oh = bh + hh - jh
};

GNET_HD int phase_count(int in, int ph, int s) {
    return ph < in ? (in - ph + s - 1) / s : 0;
}

GNET_HD DataPhase data_phase(const Conv2dParams& p, int z) {
    DataPhase f;
    const int s = p.stride;
    f.ph = z / s;
    f.pw = z - f.ph * s;
    f.r_h = (f.ph + p.pad) % s;
    f.r_w = (f.pw + p.pad) % s;
    f.TH = phase_count(p.KH, f.r_h, s);
    f.TW = phase_count(p.KW, f.r_w, s);
    f.HH = phase_count(p.H, f.ph, s);
    f.WW = phase_count(p.W, f.pw, s);
    f.bh = (f.ph + p.pad - f.r_h) / s;
    f.bw = (f.pw + p.pad - f.r_w) / s;
    return f;
}

template <class T>
struct BackwardDataOp {
    Conv2dParams p;
    const float* dy;  // (N, OC, OH, OW)
    const float* w;   // (OC, C, KH, KW)
    float* dx;        // (N, C, H, W)
    int M;            // C

    struct Thread {
        int m0;
        int K;             // OC*TH*TW of this block's phase
        FastDiv taps, tw;  // k -> (oc, jh, jw)
        int r_h, r_w;
        bool n_ok;
        const float* dy_img;
        int ohb, owb;  // oh = ohb - jh, ow = owb - jw
    };

    GNET_HD int n_extent(int z) const {
        const DataPhase f = data_phase(p, z);
        return p.N * f.HH * f.WW;
    }
    GNET_HD void k_range(int z, int /*tiles_per_split*/, int& begin, int& end) const {
        const DataPhase f = data_phase(p, z);
        begin = 0;
        end = p.OC * f.TH * f.TW;
    }

    GNET_HD Thread thread_state(int m0, int n0, int tid, int z) const {
        const DataPhase f = data_phase(p, z);
        Thread t;
        t.m0 = m0;
        t.K = p.OC * f.TH * f.TW;
        t.taps = FastDiv::make(imax(1, f.TH * f.TW));
        t.tw = FastDiv::make(imax(1, f.TW));
        t.r_h = f.r_h;
        t.r_w = f.r_w;
        const int hw = imax(1, f.HH * f.WW);
        const int n = n0 + tid % T::BN;
        t.n_ok = n < p.N * f.HH * f.WW;
        const int nn = t.n_ok ? n : 0;
        const int img = nn / hw, q = nn - img * hw;
        const int hh = q / imax(1, f.WW), ww = q - hh * f.WW;
        t.dy_img = dy + int64_t(img) * p.OC * p.OH * p.OW;
        t.ohb = f.bh + hh;
        t.owb = f.bw + ww;
        return t;
    }

    // k -> w offset (oc, c = 0, kh, kw) and the output offsets jh, jw.
    GNET_HD void split_k(const Thread& t, int k, int& oc, int& jh, int& jw) const {
        oc = t.taps.div(k);
        const int r = k - oc * int(t.taps.d);
        jh = t.tw.div(r);
        jw = r - jh * int(t.tw.d);
    }

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[T::LA],
                      float (&rb)[T::LB]) const {
        const int ka = k0 + tid % kBK;
        const bool ka_ok = ka < t.K;
        int oc = 0, jh = 0, jw = 0;
        if (ka_ok) split_k(t, ka, oc, jh, jw);
        const int64_t w_off =
            (int64_t(oc) * p.C * p.KH + (t.r_h + p.stride * jh)) * p.KW + (t.r_w + p.stride * jw);
        const int c_step = p.KH * p.KW;
        GNET_UNROLL
        for (int i = 0; i < T::LA; ++i) {
            const int c = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (ka_ok && c < M) ? load_ro(w + w_off + int64_t(c) * c_step) : 0.f;
        }
        GNET_UNROLL
        for (int i = 0; i < T::LB; ++i) {
            const int k = k0 + tid / T::BN + i * (kThreads / T::BN);
            float v = 0.f;
            if (t.n_ok && k < t.K) {
                split_k(t, k, oc, jh, jw);
                const int oh = t.ohb - jh, ow = t.owb - jw;
                if (inside(oh, p.OH) && inside(ow, p.OW))
                    v = load_ro(t.dy_img + (int64_t(oc) * p.OH + oh) * p.OW + ow);
            }
            rb[i] = v;
        }
    }

    GNET_HD void store(Smem<T::BM>& as, Smem<T::BN>& bs, const float (&ra)[T::LA],
                       const float (&rb)[T::LB], int tid) const {
        store_k_fastest<T::BM>(as, ra, tid);
        store_row_fastest<T::BN>(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kSub][kSub], int z) const {
        const DataPhase f = data_phase(p, z);
        const int hw = f.HH * f.WW;
        GNET_UNROLL
        for (int j = 0; j < kSub; ++j) {
            if (n + j >= p.N * hw) continue;
            const int img = (n + j) / hw, q = (n + j) - img * hw;
            const int hh = q / f.WW, ww = q - hh * f.WW;
            const int64_t pix = int64_t(f.ph + p.stride * hh) * p.W + (f.pw + p.stride * ww);
            GNET_UNROLL
            for (int i = 0; i < kSub; ++i)
                if (m + i < M) dx[(int64_t(img) * M + (m + i)) * p.H * p.W + pix] = acc[i][j];
        }
    }
};

// ---------------------------------------------------------------------------------------------
// backward_weight: M = OC, N = C*KH*KW, K = N*OH*OW;
//   dw(oc, (c,kh,kw)) = sum_{n,oh,ow} dy(n, oc, oh, ow) * x(n, c, oh*s - pad + kh, ow*s - pad + kw)
// Split s of K writes its partial tile to out + s*M*N (=); with one split `out` is dw itself and
// `accum` applies.
// ---------------------------------------------------------------------------------------------
template <class T, int KS>
struct BackwardWeightOp {
    Conv2dParams p;
    KernelSize<KS> ks;
    const float* x;   // (N, C, H, W)
    const float* dy;  // (N, OC, OH, OW)
    float* out;       // dw (OC, C*KH*KW), or the workspace (splits, OC, C*KH*KW)
    Accum accum;      // for out == dw
    int M, N, K;
    FastDiv div_ohw, div_ow;  // k -> (n, oh, ow)

    struct Thread {
        int m0;
        int x_off[T::LB];  // c*H*W of the columns this thread loads (-1: beyond N)
        int kh[T::LB], kw[T::LB];
    };

    GNET_HD int n_extent(int /*z*/) const { return N; }
    // Split z: K steps [z*tiles_per_split, (z+1)*tiles_per_split).
    GNET_HD void k_range(int z, int tiles_per_split, int& begin, int& end) const {
        begin = z * tiles_per_split * kBK;
        end = begin + tiles_per_split * kBK < K ? begin + tiles_per_split * kBK : K;
    }

    GNET_HD Thread thread_state(int m0, int n0, int tid, int /*z*/) const {
        Thread t;
        t.m0 = m0;
        GNET_UNROLL
        for (int i = 0; i < T::LB; ++i) {
            const int n = n0 + tid / kBK + i * (kThreads / kBK);
            const int c = n / ks.khw(), r = n - c * ks.khw();
            t.kh[i] = r / ks.kw();
            t.kw[i] = r - t.kh[i] * ks.kw();
            t.x_off[i] = n < N ? c * p.H * p.W : -1;
        }
        return t;
    }

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[T::LA],
                      float (&rb)[T::LB]) const {
        const int k = k0 + tid % kBK;
        const bool k_ok = k < K;
        const int ohw = p.OH * p.OW;
        const int kk = k_ok ? k : 0;
        const int img = div_ohw.div(kk), pix = kk - img * ohw;
        const int oh = div_ow.div(pix), ow = pix - oh * p.OW;
        const float* dy_px = dy + int64_t(img) * M * ohw + pix;
        GNET_UNROLL
        for (int i = 0; i < T::LA; ++i) {
            const int oc = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (k_ok && oc < M) ? load_ro(dy_px + int64_t(oc) * ohw) : 0.f;
        }
        const float* x_img = x + int64_t(img) * p.C * p.H * p.W;
        const int ih0 = oh * p.stride - p.pad, iw0 = ow * p.stride - p.pad;
        GNET_UNROLL
        for (int i = 0; i < T::LB; ++i) {
            const int ih = ih0 + t.kh[i], iw = iw0 + t.kw[i];
            rb[i] = (k_ok && t.x_off[i] >= 0 && inside(ih, p.H) && inside(iw, p.W))
                        ? load_ro(x_img + t.x_off[i] + ih * p.W + iw)
                        : 0.f;
        }
    }

    GNET_HD void store(Smem<T::BM>& as, Smem<T::BN>& bs, const float (&ra)[T::LA],
                       const float (&rb)[T::LB], int tid) const {
        store_k_fastest<T::BM>(as, ra, tid);
        store_k_fastest<T::BN>(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kSub][kSub], int split) const {
        float* dst = out + int64_t(split) * M * N;
        const bool add = accum == Accum::Add;
        GNET_UNROLL
        for (int i = 0; i < kSub; ++i) {
            if (m + i >= M) continue;
            GNET_UNROLL
            for (int j = 0; j < kSub; ++j) {
                if (n + j >= N) continue;
                float* d = dst + int64_t(m + i) * N + (n + j);
                *d = add ? *d + acc[i][j] : acc[i][j];
            }
        }
    }
};

// Hands the register tile to the pass's write, one 4x4 sub-tile at a time.
template <class T, class Op>
GNET_HD void write_tile(const Op& op, const float (&acc)[T::TM][T::TN], int m, int n, int z) {
    GNET_UNROLL
    for (int g = 0; g < T::TM / kSub; ++g)
        GNET_UNROLL
    for (int h = 0; h < T::TN / kSub; ++h) {
        float sub[kSub][kSub];
        GNET_UNROLL
        for (int i = 0; i < kSub; ++i)
            GNET_UNROLL
        for (int j = 0; j < kSub; ++j)
            sub[i][j] = acc[g * kSub + i][h * kSub + j];
        op.write(m + g * T::ROW_STEP, n + h * T::COL_STEP, sub, z);
    }
}

// ---------------------------------------------------------------------------------------------
// The shared GEMM kernel. Grid: (ceil(N/BN), ceil(M/BM), Z) with Z the pass's third axis.
// ---------------------------------------------------------------------------------------------
template <class T, class Op>
static __global__ void __launch_bounds__(kThreads)
    conv2d_gemm_kernel(const Op op, int tiles_per_split) {
    __shared__ __align__(16) Smem<T::BM> as[2];
    __shared__ __align__(16) Smem<T::BN> bs[2];

    const int tid = threadIdx.x;
    const int tm = tid / T::TCOLS, tn = tid % T::TCOLS;
    const int m0 = blockIdx.y * T::BM, n0 = blockIdx.x * T::BN;
    const int z = blockIdx.z;
    if (n0 >= op.n_extent(z)) return;  // the whole block is beyond this z's columns
    int k_begin, k_end;
    op.k_range(z, tiles_per_split, k_begin, k_end);

    const typename Op::Thread t = op.thread_state(m0, n0, tid, z);
    float ra[T::LA], rb[T::LB];
    op.load(t, k_begin, tid, ra, rb);
    op.store(as[0], bs[0], ra, rb, tid);
    __syncthreads();

    float acc[T::TM][T::TN] = {};
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
        const bool has_next = k0 + kBK < k_end;
        if (has_next) op.load(t, k0 + kBK, tid, ra, rb);  // global -> registers, overlaps the FMAs
        tile_multiply<T>(as[buf], bs[buf], acc, tm, tn);
        // The other buffer was last read in the previous step, before its closing barrier.
        if (has_next) op.store(as[buf ^ 1], bs[buf ^ 1], ra, rb, tid);
        __syncthreads();
        buf ^= 1;
    }
    write_tile<T>(op, acc, m0 + tm * kSub, n0 + tn * kSub, z);
}

// dw (=, or += with Accum::Add) = sum over s in order of ws[s] (the split-K slices).
static __global__ void conv2d_backward_weight_reduce_kernel(const float* __restrict__ ws,
                                                            int splits, int64_t count,
                                                            float* __restrict__ dw, Accum accum) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        float s = 0.f;
        for (int z = 0; z < splits; ++z)
            s += ws[z * count + i];
        dw[i] = accum == Accum::Add ? dw[i] + s : s;
    }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------
struct GemmShape {
    int M, N, K;
};

GemmShape checked_shape(const Conv2dParams& p, int64_t M, int64_t N, int64_t K, const char* pass) {
    GNET_CHECK(
        p.N > 0 && p.C > 0 && p.H > 0 && p.W > 0 && p.OC > 0 && p.KH > 0 && p.KW > 0 &&
            p.stride > 0 && p.pad >= 0 && p.OH == conv_out_size(p.H, p.KH, p.stride, p.pad) &&
            p.OW == conv_out_size(p.W, p.KW, p.stride, p.pad) && p.OH > 0 && p.OW > 0,
        std::string("conv2d ") + pass + ": inconsistent Conv2dParams (use Conv2dParams::make)");
    const int64_t limit = (int64_t(1) << 31) - 1 - 2 * TileWide::BN;
    GNET_CHECK(M < limit && N < limit && K < limit && p.x_size() < limit && p.y_size() < limit,
               std::string("conv2d ") + pass + ": tensor too large for 32-bit indexing");
    GNET_CHECK(ceil_div(M, 64) <= 65535, std::string("conv2d ") + pass + ": too many channels");
    return GemmShape{int(M), int(N), int(K)};
}

// 1, 3, 7 for square kernels with a compiled specialisation, else 0 (runtime divisors).
int kernel_class(const Conv2dParams& p) {
    if (p.KH != p.KW) return 0;
    return (p.KH == 1 || p.KH == 3 || p.KH == 7) ? p.KH : 0;
}

// The wide tile when it still gives kTargetBlocks blocks, else the square one.
bool use_wide(int64_t M, int64_t N, int64_t Z) {
    return ceil_div(M, TileWide::BM) * ceil_div(N, TileWide::BN) * Z >= kTargetBlocks;
}

template <class T, class Op>
void launch_gemm(const Op& op, int64_t n_columns, int z, int tiles_per_split, cudaStream_t stream) {
    const dim3 grid(unsigned(ceil_div(n_columns, T::BN)), unsigned(ceil_div(op.M, T::BM)),
                    unsigned(z));
    launch<conv2d_gemm_kernel<T, Op>>(grid, kThreads, 0, stream, op, tiles_per_split);
}

int k_tiles(int K) {
    return int(ceil_div(K, kBK));
}

// backward_weight: the tile (wide when dw rows are long enough to fill it) and the K split.
struct WeightPlan {
    bool wide;
    int splits, tiles_per_split;
};

WeightPlan weight_plan(const GemmShape& g) {
    const bool wide = g.N >= TileWide::BN;
    const int64_t tiles = wide ? ceil_div(g.M, TileWide::BM) * ceil_div(g.N, TileWide::BN)
                               : ceil_div(g.M, TileSquare::BM) * ceil_div(g.N, TileSquare::BN);
    const int kt = k_tiles(g.K);
    int64_t splits = tiles >= kTargetBlocks ? 1 : ceil_div(kTargetBlocks, tiles);
    splits = std::min<int64_t>(splits, std::max(1, kt / kMinTilesPerSplit));
    const int tps = int(ceil_div(kt, splits));
    return WeightPlan{wide, int(ceil_div(kt, tps)), tps};
}

GemmShape weight_shape(const Conv2dParams& p) {
    return checked_shape(p, p.OC, int64_t(p.C) * p.KH * p.KW, int64_t(p.N) * p.OH * p.OW,
                         "backward_weight");
}

template <class T>
void forward_launch(const Conv2dParams& p, const GemmShape& g, const float* x, const float* w,
                    float* y, cudaStream_t stream) {
    switch (kernel_class(p)) {
        case 1:
            launch_gemm<T>(ForwardOp<T, 1>{p, kernel_size<1>(p), x, w, y, g.M, g.N, g.K}, g.N, 1, 0,
                           stream);
            break;
        case 3:
            launch_gemm<T>(ForwardOp<T, 3>{p, kernel_size<3>(p), x, w, y, g.M, g.N, g.K}, g.N, 1, 0,
                           stream);
            break;
        case 7:
            launch_gemm<T>(ForwardOp<T, 7>{p, kernel_size<7>(p), x, w, y, g.M, g.N, g.K}, g.N, 1, 0,
                           stream);
            break;
        default:
            launch_gemm<T>(ForwardOp<T, 0>{p, kernel_size<0>(p), x, w, y, g.M, g.N, g.K}, g.N, 1, 0,
                           stream);
            break;
    }
}

template <class T>
void backward_weight_launch(const Conv2dParams& p, const GemmShape& g, const WeightPlan& s,
                            const float* x, const float* dy, float* out, Accum out_accum,
                            cudaStream_t stream) {
    const FastDiv ohw = FastDiv::make(uint32_t(p.OH * p.OW)), ow = FastDiv::make(uint32_t(p.OW));
    switch (kernel_class(p)) {
        case 1:
            launch_gemm<T>(BackwardWeightOp<T, 1>{p, kernel_size<1>(p), x, dy, out, out_accum, g.M,
                                                  g.N, g.K, ohw, ow},
                           g.N, s.splits, s.tiles_per_split, stream);
            break;
        case 3:
            launch_gemm<T>(BackwardWeightOp<T, 3>{p, kernel_size<3>(p), x, dy, out, out_accum, g.M,
                                                  g.N, g.K, ohw, ow},
                           g.N, s.splits, s.tiles_per_split, stream);
            break;
        case 7:
            launch_gemm<T>(BackwardWeightOp<T, 7>{p, kernel_size<7>(p), x, dy, out, out_accum, g.M,
                                                  g.N, g.K, ohw, ow},
                           g.N, s.splits, s.tiles_per_split, stream);
            break;
        default:
            launch_gemm<T>(BackwardWeightOp<T, 0>{p, kernel_size<0>(p), x, dy, out, out_accum, g.M,
                                                  g.N, g.K, ohw, ow},
                           g.N, s.splits, s.tiles_per_split, stream);
            break;
    }
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    Stream stream) {
    const GemmShape g =
        checked_shape(p, p.OC, int64_t(p.N) * p.OH * p.OW, int64_t(p.C) * p.KH * p.KW, "forward");
    if (use_wide(g.M, g.N, 1))
        forward_launch<TileWide>(p, g, x, w, y, stream);
    else
        forward_launch<TileSquare>(p, g, x, w, y, stream);
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                          Stream stream) {
    checked_shape(p, p.C, int64_t(p.N) * p.H * p.W, int64_t(p.OC) * p.KH * p.KW, "backward_data");
    GNET_CHECK(p.stride <= 64, "conv2d backward_data: stride above 64 is not supported");
    // Phase (0, 0) has the most pixels; blocks beyond a smaller phase's columns return at once.
    const int64_t n_max = int64_t(p.N) * ceil_div(p.H, p.stride) * ceil_div(p.W, p.stride);
    const int phases = p.stride * p.stride;
    if (use_wide(p.C, n_max, phases))
        launch_gemm<TileWide>(BackwardDataOp<TileWide>{p, dy, w, dx, p.C}, n_max, phases, 0,
                              stream);
    else
        launch_gemm<TileSquare>(BackwardDataOp<TileSquare>{p, dy, w, dx, p.C}, n_max, phases, 0,
                                stream);
}

size_t conv2d_workspace_bytes(const Conv2dParams& p) {
    const GemmShape g = weight_shape(p);
    const WeightPlan s = weight_plan(g);
    return s.splits > 1 ? size_t(s.splits) * size_t(g.M) * size_t(g.N) * sizeof(float) : 0;
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum, void* workspace, Stream stream) {
    const GemmShape g = weight_shape(p);
    const WeightPlan s = weight_plan(g);
    GNET_CHECK(s.splits == 1 || workspace != nullptr,
               "conv2d backward_weight: needs a workspace of " +
                   std::to_string(conv2d_workspace_bytes(p)) +
                   " bytes (conv2d_workspace_bytes), got nullptr");
    // Slices overwrite their part of the workspace; `accum` is applied by the reduction.
    float* out = s.splits > 1 ? static_cast<float*>(workspace) : dw;
    const Accum out_accum = s.splits > 1 ? Accum::Overwrite : accum;
    if (s.wide)
        backward_weight_launch<TileWide>(p, g, s, x, dy, out, out_accum, stream);
    else
        backward_weight_launch<TileSquare>(p, g, s, x, dy, out, out_accum, stream);
    if (s.splits > 1) {
        const int64_t count = int64_t(g.M) * g.N;
        const int threads = 256;
        const int blocks = int(std::min<int64_t>(ceil_div(count, threads), 4096));
        launch<conv2d_backward_weight_reduce_kernel>(blocks, threads, 0, stream,
                                                     static_cast<const float*>(workspace), s.splits,
                                                     count, dw, accum);
    }
}

}  // namespace gnet::gpu
