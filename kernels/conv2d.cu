// conv2d GPU twin: implicit GEMM for forward, backward-data and backward-weight. See conv2d.h.
//
// One kernel template, conv2d_gemm_kernel<Op>, computes a 64x64 tile of C (M x N) = A (M x K) *
// B (K x N) per block of 256 threads; each thread owns a 4x4 register tile (rows tm*4.., columns
// tn*4.. with tm = tid/16, tn = tid%16). K advances in steps of 16 through double-buffered shared
// memory: while the block multiplies tile t from one buffer, every thread already holds tile t+1
// in registers (4 values of A, 4 of B) and stores them into the other buffer afterwards, so one
// __syncthreads per step suffices. Neither A nor B exists in memory: the pass-specific Op gathers
// each element straight from x, w or dy (zero outside the image, beyond K, beyond M or N).
//
// Load patterns (e = tid + 256*i, i = 0..3, four values per thread and operand):
//   "k-fastest"   smem[e % 16][e / 16]: a thread keeps one k per tile and four rows/columns
//   "row-fastest" smem[e / 64][e % 64]: a thread keeps one column n and four k
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

// `#pragma unroll` for the device pass only (the host pass of these GNET_HD helpers would warn).
#if defined(__CUDA_ARCH__)
#define GNET_UNROLL _Pragma("unroll")
#else
#define GNET_UNROLL
#endif

namespace gnet::gpu {
namespace {

constexpr int kBM = 64;        // block tile rows (M)
constexpr int kBN = 64;        // block tile columns (N)
constexpr int kBK = 16;        // K step
constexpr int kThreads = 256;  // 16 x 16 threads, 4x4 outputs each
constexpr int kTM = 4;
constexpr int kTN = 4;
constexpr int kPad = 4;        // smem row padding: fewer bank conflicts, rows stay 16-byte aligned
constexpr int kLoads = kBM * kBK / kThreads;  // values of one operand a thread loads per step
static_assert(kBM == kBN, "one smem row type serves both operands");
static_assert(kBN * kBK / kThreads == kLoads, "A and B tiles have the same size");
static_assert(kThreads == (kBM / kTM) * (kBN / kTN), "one thread per 4x4 register tile");
static_assert((kBM + kPad) % 4 == 0, "float4 reads of smem rows need 16-byte alignment");

// backward_weight split-K: aim for this many blocks (two waves on a 132-SM H100; a constant, so
// the split and hence the rounding of dw do not depend on which GPU runs it) and give every
// slice at least kMinTilesPerSplit K steps.
constexpr int kTargetBlocks = 264;
constexpr int kMinTilesPerSplit = 16;

using SmemTile = float[kBK][kBM + kPad];

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

GNET_HD int imax(int a, int b) { return a > b ? a : b; }
GNET_HD bool inside(int i, int n) { return unsigned(i) < unsigned(n); }

// Read-only load through the non-coherent cache on the device. The tile helpers and the pass
// structs are host-callable too, which lets their index maps be stepped through on a CPU.
GNET_HD float load_ro(const float* ptr) {
#if defined(__CUDA_ARCH__)
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
        while ((uint64_t(1) << shift) < d) ++shift;
        const uint64_t mult = ((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1;
        return FastDiv{d, uint32_t(mult), shift};
    }
    GNET_HD int div(int n) const {
#if defined(__CUDA_ARCH__)
        const uint32_t hi = __umulhi(uint32_t(n), mult);
#else
        const uint32_t hi = uint32_t((uint64_t(uint32_t(n)) * mult) >> 32);
#endif
        return int((hi + uint32_t(n)) >> shift);
    }
};

GNET_HD void store_k_fastest(SmemTile& s, const float (&r)[kLoads], int tid) {
    GNET_UNROLL
    for (int i = 0; i < kLoads; ++i) s[tid % kBK][tid / kBK + i * (kThreads / kBK)] = r[i];
}

GNET_HD void store_row_fastest(SmemTile& s, const float (&r)[kLoads], int tid) {
    GNET_UNROLL
    for (int i = 0; i < kLoads; ++i) s[tid / kBN + i * (kThreads / kBN)][tid % kBN] = r[i];
}

// acc += As^T * Bs for this thread's 4x4 tile.
GNET_HD void tile_multiply(const SmemTile& as, const SmemTile& bs,
                                              float (&acc)[kTM][kTN], int tm, int tn) {
    GNET_UNROLL
    for (int kk = 0; kk < kBK; ++kk) {
        const float4 a = *reinterpret_cast<const float4*>(&as[kk][tm * kTM]);
        const float4 b = *reinterpret_cast<const float4*>(&bs[kk][tn * kTN]);
        const float av[kTM] = {a.x, a.y, a.z, a.w};
        const float bv[kTN] = {b.x, b.y, b.z, b.w};
        GNET_UNROLL
        for (int i = 0; i < kTM; ++i)
            GNET_UNROLL
            for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

// ---------------------------------------------------------------------------------------------
// forward: M = OC, N = N*OH*OW, K = C*KH*KW; C(oc, (n,oh,ow)) -> y(n, oc, oh, ow)
// ---------------------------------------------------------------------------------------------
template <int KS>
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
        const int n = n0 + tid % kBN;
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

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[kLoads],
                         float (&rb)[kLoads]) const {
        const int ka = k0 + tid % kBK;
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int m = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (m < M && ka < K) ? load_ro(w + int64_t(m) * K + ka) : 0.f;
        }
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int k = k0 + tid / kBN + i * (kThreads / kBN);
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

    GNET_HD void store(SmemTile& as, SmemTile& bs, const float (&ra)[kLoads],
                          const float (&rb)[kLoads], int tid) const {
        store_k_fastest(as, ra, tid);
        store_row_fastest(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kTM][kTN], int /*split*/) const {
        const int ohw = p.OH * p.OW;
        GNET_UNROLL
        for (int j = 0; j < kTN; ++j) {
            if (n + j >= N) continue;
            const int img = (n + j) / ohw, pix = (n + j) - img * ohw;
            GNET_UNROLL
            for (int i = 0; i < kTM; ++i)
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

GNET_HD int phase_count(int in, int ph, int s) { return ph < in ? (in - ph + s - 1) / s : 0; }

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
        int ohb, owb;      // oh = ohb - jh, ow = owb - jw
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
        const int n = n0 + tid % kBN;
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

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[kLoads],
                      float (&rb)[kLoads]) const {
        const int ka = k0 + tid % kBK;
        const bool ka_ok = ka < t.K;
        int oc = 0, jh = 0, jw = 0;
        if (ka_ok) split_k(t, ka, oc, jh, jw);
        const int64_t w_off =
            (int64_t(oc) * p.C * p.KH + (t.r_h + p.stride * jh)) * p.KW + (t.r_w + p.stride * jw);
        const int c_step = p.KH * p.KW;
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int c = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (ka_ok && c < M) ? load_ro(w + w_off + int64_t(c) * c_step) : 0.f;
        }
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int k = k0 + tid / kBN + i * (kThreads / kBN);
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

    GNET_HD void store(SmemTile& as, SmemTile& bs, const float (&ra)[kLoads],
                       const float (&rb)[kLoads], int tid) const {
        store_k_fastest(as, ra, tid);
        store_row_fastest(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kTM][kTN], int z) const {
        const DataPhase f = data_phase(p, z);
        const int hw = f.HH * f.WW;
        GNET_UNROLL
        for (int j = 0; j < kTN; ++j) {
            if (n + j >= p.N * hw) continue;
            const int img = (n + j) / hw, q = (n + j) - img * hw;
            const int hh = q / f.WW, ww = q - hh * f.WW;
            const int64_t pix = int64_t(f.ph + p.stride * hh) * p.W + (f.pw + p.stride * ww);
            GNET_UNROLL
            for (int i = 0; i < kTM; ++i)
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
template <int KS>
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
        int x_off[kLoads];  // c*H*W of the four columns this thread loads (-1: beyond N)
        int kh[kLoads], kw[kLoads];
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
        for (int i = 0; i < kLoads; ++i) {
            const int n = n0 + tid / kBK + i * (kThreads / kBK);
            const int c = n / ks.khw(), r = n - c * ks.khw();
            t.kh[i] = r / ks.kw();
            t.kw[i] = r - t.kh[i] * ks.kw();
            t.x_off[i] = n < N ? c * p.H * p.W : -1;
        }
        return t;
    }

    GNET_HD void load(const Thread& t, int k0, int tid, float (&ra)[kLoads],
                         float (&rb)[kLoads]) const {
        const int k = k0 + tid % kBK;
        const bool k_ok = k < K;
        const int ohw = p.OH * p.OW;
        const int kk = k_ok ? k : 0;
        const int img = div_ohw.div(kk), pix = kk - img * ohw;
        const int oh = div_ow.div(pix), ow = pix - oh * p.OW;
        const float* dy_px = dy + int64_t(img) * M * ohw + pix;
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int oc = t.m0 + tid / kBK + i * (kThreads / kBK);
            ra[i] = (k_ok && oc < M) ? load_ro(dy_px + int64_t(oc) * ohw) : 0.f;
        }
        const float* x_img = x + int64_t(img) * p.C * p.H * p.W;
        const int ih0 = oh * p.stride - p.pad, iw0 = ow * p.stride - p.pad;
        GNET_UNROLL
        for (int i = 0; i < kLoads; ++i) {
            const int ih = ih0 + t.kh[i], iw = iw0 + t.kw[i];
            rb[i] = (k_ok && t.x_off[i] >= 0 && inside(ih, p.H) && inside(iw, p.W))
                        ? load_ro(x_img + t.x_off[i] + ih * p.W + iw)
                        : 0.f;
        }
    }

    GNET_HD void store(SmemTile& as, SmemTile& bs, const float (&ra)[kLoads],
                          const float (&rb)[kLoads], int tid) const {
        store_k_fastest(as, ra, tid);
        store_k_fastest(bs, rb, tid);
    }

    GNET_HD void write(int m, int n, const float (&acc)[kTM][kTN], int split) const {
        float* dst = out + int64_t(split) * M * N;
        const bool add = accum == Accum::Add;
        GNET_UNROLL
        for (int i = 0; i < kTM; ++i) {
            if (m + i >= M) continue;
            GNET_UNROLL
            for (int j = 0; j < kTN; ++j) {
                if (n + j >= N) continue;
                float* d = dst + int64_t(m + i) * N + (n + j);
                *d = add ? *d + acc[i][j] : acc[i][j];
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------
// The shared GEMM kernel. Grid: (ceil(N/64), ceil(M/64), splits); split z covers K steps
// [z*tiles_per_split, (z+1)*tiles_per_split).
// ---------------------------------------------------------------------------------------------
template <class Op>
static __global__ void __launch_bounds__(kThreads)
    conv2d_gemm_kernel(const Op op, int tiles_per_split) {
    __shared__ __align__(16) SmemTile as[2];
    __shared__ __align__(16) SmemTile bs[2];

    const int tid = threadIdx.x;
    const int tm = tid / (kBN / kTN), tn = tid % (kBN / kTN);
    const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
    const int z = blockIdx.z;
    if (n0 >= op.n_extent(z)) return;  // the whole block is beyond this z's columns
    int k_begin, k_end;
    op.k_range(z, tiles_per_split, k_begin, k_end);

    const typename Op::Thread t = op.thread_state(m0, n0, tid, z);
    float ra[kLoads], rb[kLoads];
    op.load(t, k_begin, tid, ra, rb);
    op.store(as[0], bs[0], ra, rb, tid);
    __syncthreads();

    float acc[kTM][kTN] = {};
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
        const bool has_next = k0 + kBK < k_end;
        if (has_next) op.load(t, k0 + kBK, tid, ra, rb);  // global -> registers, overlaps the FMAs
        tile_multiply(as[buf], bs[buf], acc, tm, tn);
        // The other buffer was last read in the previous step, before its closing barrier.
        if (has_next) op.store(as[buf ^ 1], bs[buf ^ 1], ra, rb, tid);
        __syncthreads();
        buf ^= 1;
    }
    op.write(m0 + tm * kTM, n0 + tn * kTN, acc, z);
}

// dw (=, or += with Accum::Add) = sum over s in order of ws[s] (the split-K slices).
static __global__ void conv2d_backward_weight_reduce_kernel(const float* __restrict__ ws,
                                                            int splits, int64_t count,
                                                            float* __restrict__ dw, Accum accum) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        float s = 0.f;
        for (int z = 0; z < splits; ++z) s += ws[z * count + i];
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
    GNET_CHECK(p.N > 0 && p.C > 0 && p.H > 0 && p.W > 0 && p.OC > 0 && p.KH > 0 && p.KW > 0 &&
                   p.stride > 0 && p.pad >= 0 &&
                   p.OH == conv_out_size(p.H, p.KH, p.stride, p.pad) &&
                   p.OW == conv_out_size(p.W, p.KW, p.stride, p.pad) && p.OH > 0 && p.OW > 0,
               std::string("conv2d ") + pass + ": inconsistent Conv2dParams (use Conv2dParams::make)");
    const int64_t limit = (int64_t(1) << 31) - 1 - 2 * kBN;
    GNET_CHECK(M < limit && N < limit && K < limit && p.x_size() < limit && p.y_size() < limit,
               std::string("conv2d ") + pass + ": tensor too large for 32-bit indexing");
    GNET_CHECK(ceil_div(M, kBM) <= 65535, std::string("conv2d ") + pass + ": too many channels");
    return GemmShape{int(M), int(N), int(K)};
}

// 1, 3, 7 for square kernels with a compiled specialisation, else 0 (runtime divisors).
int kernel_class(const Conv2dParams& p) {
    if (p.KH != p.KW) return 0;
    return (p.KH == 1 || p.KH == 3 || p.KH == 7) ? p.KH : 0;
}

template <class Op>
void launch_gemm(const Op& op, int splits, int tiles_per_split, cudaStream_t stream) {
    const dim3 grid(unsigned(ceil_div(op.N, kBN)), unsigned(ceil_div(op.M, kBM)), unsigned(splits));
    conv2d_gemm_kernel<Op><<<grid, kThreads, 0, stream>>>(op, tiles_per_split);
    GNET_LAUNCH_CHECK(stream);
}

int k_tiles(int K) { return int(ceil_div(K, kBK)); }

struct WeightSplit {
    int splits, tiles_per_split;
};

WeightSplit weight_split(const GemmShape& g) {
    const int64_t tiles = ceil_div(g.M, kBM) * ceil_div(g.N, kBN);
    const int kt = k_tiles(g.K);
    int64_t splits = tiles >= kTargetBlocks ? 1 : ceil_div(kTargetBlocks, tiles);
    splits = std::min<int64_t>(splits, std::max(1, kt / kMinTilesPerSplit));
    const int tps = int(ceil_div(kt, splits));
    return WeightSplit{int(ceil_div(kt, tps)), tps};
}

GemmShape weight_shape(const Conv2dParams& p) {
    return checked_shape(p, p.OC, int64_t(p.C) * p.KH * p.KW, int64_t(p.N) * p.OH * p.OW,
                         "backward_weight");
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    Stream stream) {
    const GemmShape g = checked_shape(p, p.OC, int64_t(p.N) * p.OH * p.OW,
                                      int64_t(p.C) * p.KH * p.KW, "forward");
    const int tiles = k_tiles(g.K);
    switch (kernel_class(p)) {
        case 1: launch_gemm(ForwardOp<1>{p, kernel_size<1>(p), x, w, y, g.M, g.N, g.K}, 1, tiles, stream); break;
        case 3: launch_gemm(ForwardOp<3>{p, kernel_size<3>(p), x, w, y, g.M, g.N, g.K}, 1, tiles, stream); break;
        case 7: launch_gemm(ForwardOp<7>{p, kernel_size<7>(p), x, w, y, g.M, g.N, g.K}, 1, tiles, stream); break;
        default: launch_gemm(ForwardOp<0>{p, kernel_size<0>(p), x, w, y, g.M, g.N, g.K}, 1, tiles, stream); break;
    }
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                          Stream stream) {
    checked_shape(p, p.C, int64_t(p.N) * p.H * p.W, int64_t(p.OC) * p.KH * p.KW, "backward_data");
    GNET_CHECK(p.stride <= 64, "conv2d backward_data: stride above 64 is not supported");
    // Phase (0, 0) has the most pixels; blocks beyond a smaller phase's columns return at once.
    const int64_t n_max = int64_t(p.N) * ceil_div(p.H, p.stride) * ceil_div(p.W, p.stride);
    const dim3 grid(unsigned(ceil_div(n_max, kBN)), unsigned(ceil_div(p.C, kBM)),
                    unsigned(p.stride * p.stride));
    conv2d_gemm_kernel<BackwardDataOp><<<grid, kThreads, 0, stream>>>(
        BackwardDataOp{p, dy, w, dx, p.C}, 0);
    GNET_LAUNCH_CHECK(stream);
}

size_t conv2d_workspace_bytes(const Conv2dParams& p) {
    const GemmShape g = weight_shape(p);
    const WeightSplit s = weight_split(g);
    return s.splits > 1 ? size_t(s.splits) * size_t(g.M) * size_t(g.N) * sizeof(float) : 0;
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum, void* workspace, Stream stream) {
    const GemmShape g = weight_shape(p);
    const WeightSplit s = weight_split(g);
    GNET_CHECK(s.splits == 1 || workspace != nullptr,
               "conv2d backward_weight: needs a workspace of " +
                   std::to_string(conv2d_workspace_bytes(p)) +
                   " bytes (conv2d_workspace_bytes), got nullptr");
    // Slices overwrite their part of the workspace; `accum` is applied by the reduction.
    float* out = s.splits > 1 ? static_cast<float*>(workspace) : dw;
    const Accum out_accum = s.splits > 1 ? Accum::Overwrite : accum;
    const FastDiv ohw = FastDiv::make(uint32_t(p.OH * p.OW)), ow = FastDiv::make(uint32_t(p.OW));
    switch (kernel_class(p)) {
        case 1: launch_gemm(BackwardWeightOp<1>{p, kernel_size<1>(p), x, dy, out, out_accum, g.M, g.N, g.K, ohw, ow}, s.splits, s.tiles_per_split, stream); break;
        case 3: launch_gemm(BackwardWeightOp<3>{p, kernel_size<3>(p), x, dy, out, out_accum, g.M, g.N, g.K, ohw, ow}, s.splits, s.tiles_per_split, stream); break;
        case 7: launch_gemm(BackwardWeightOp<7>{p, kernel_size<7>(p), x, dy, out, out_accum, g.M, g.N, g.K, ohw, ow}, s.splits, s.tiles_per_split, stream); break;
        default: launch_gemm(BackwardWeightOp<0>{p, kernel_size<0>(p), x, dy, out, out_accum, g.M, g.N, g.K, ohw, ow}, s.splits, s.tiles_per_split, stream); break;
    }
    if (s.splits > 1) {
        const int64_t count = int64_t(g.M) * g.N;
        const int threads = 256;
        const int blocks = int(std::min<int64_t>(ceil_div(count, threads), 4096));
        conv2d_backward_weight_reduce_kernel<<<blocks, threads, 0, stream>>>(
            static_cast<const float*>(workspace), s.splits, count, dw, accum);
        GNET_LAUNCH_CHECK(stream);
    }
}

}  // namespace gnet::gpu
