// conv2d, fast CPU backend (see conv2d.h). 3x3 stride-1 pad-1 layers go to Winograd F(4x4, 3x3)
// (winograd_cpu_fast.cpp); every other shape (the 7x7/2 stem, the 3x3/2 and 1x1/2 layers, and
// anything else) is a packed GEMM on the 6 x 16 micro-kernel:
//   forward          per image, blocks of pixels: im2col straight into 16-pixel panels, then
//                    y (OC, P) = W (OC, K) col (K, P) against W packed in 6-row panels
//   backward_data    per image: dcol (K, 16 px) = W^T dy for each 16-pixel panel, added into dx
//                    (col2im) at once, so no K x P matrix is ever stored
//   backward_weight  each thread sums dy col^T over its own images into a private dW, the
//                    partials are then added in thread order (deterministic for a thread count)
// Work is split over images x pixel blocks (forward), images (backward) on the worker pool.
#include <algorithm>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu_parallel.h"
#include "kernels/gemm_cpu_fast.h"
#include "kernels/winograd_cpu_fast.h"

namespace gnet::cpu_fast {
namespace {

constexpr int kMR = kGemmMR, kNR = kGemmNR;
// Pixels per forward / backward-data work item (4 panels of 16).
constexpr int64_t kForwardPixels = 4 * kNR;
// GEMM depth per pass over a panel: 256 x 16 floats = 16 KB, half of L1.
constexpr int kBlockK = 256;
// Floats of im2col panel one backward-weight step may hold (1 MB: inside L2).
constexpr int64_t kPanelFloats = int64_t(256) << 10;

int64_t round_up(int64_t a, int64_t b) {
    return (a + b - 1) / b * b;
}

std::vector<float>& buffer(int which) {
    thread_local std::vector<float> b[2];
    return b[which];
}
float* buffer_floats(std::vector<float>& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(size_t(n));
    return v.data();
}

// W (rows, K) row-major -> panels [ceil(rows/6)][K][6], zero rows past the end. transposed:
// the rows are W's columns (W^T, for backward-data), K is then W's row count.
void pack_rows(const float* w, int64_t rows, int64_t K, bool transposed, float* out) {
    const int64_t groups = ceil_div(rows, kMR);
    parallel_for_each(groups, [&](int64_t g) {
        float* dst = out + g * K * kMR;
        for (int64_t k = 0; k < K; ++k)
            for (int i = 0; i < kMR; ++i) {
                const int64_t r = g * kMR + i;
                dst[k * kMR + i] = r < rows ? (transposed ? w[k * rows + r] : w[r * K + k]) : 0.f;
            }
    });
}

// Where pixel q's receptive field starts in the input plane, and whether it lies wholly inside.
struct Receptive {
    int ih0, iw0;
    bool inside;
};
inline Receptive receptive(const Conv2dParams& p, int64_t q) {
    Receptive r;
    r.ih0 = int(q / p.OW) * p.stride - p.pad;
    r.iw0 = int(q % p.OW) * p.stride - p.pad;
    r.inside = r.ih0 >= 0 && r.ih0 + p.KH <= p.H && r.iw0 >= 0 && r.iw0 + p.KW <= p.W;
    return r;
}

// im2col of pixels [p0, p0 + np) of one image into 16-pixel panels [panel][K][16] (zeros past
// np or in the padding). Panels whose pixels all see only real input take a branch-free path.
void im2col_panels(const Conv2dParams& p, const float* img, int64_t p0, int np, float* panels) {
    const int K = p.C * p.KH * p.KW;
    const int64_t plane = int64_t(p.H) * p.W;
    const int panels_n = int(ceil_div(np, kNR));
    for (int pj = 0; pj < panels_n; ++pj) {
        float* dst = panels + int64_t(pj) * K * kNR;
        const int j0 = pj * kNR, jn = std::min(kNR, np - j0);
        Receptive r[kNR];
        int64_t off[kNR];
        bool inside = jn == kNR;
        for (int j = 0; j < jn; ++j) {
            r[j] = receptive(p, p0 + j0 + j);
            off[j] = int64_t(r[j].ih0) * p.W + r[j].iw0;
            inside = inside && r[j].inside;
        }
        if (inside) {
            for (int c = 0, k = 0; c < p.C; ++c)
                for (int kh = 0; kh < p.KH; ++kh)
                    for (int kw = 0; kw < p.KW; ++kw, ++k) {
                        const float* src = img + c * plane + int64_t(kh) * p.W + kw;
                        float* row = dst + int64_t(k) * kNR;
                        for (int j = 0; j < kNR; ++j)
                            row[j] = src[off[j]];
                    }
            continue;
        }
        for (int c = 0, k = 0; c < p.C; ++c)
            for (int kh = 0; kh < p.KH; ++kh)
                for (int kw = 0; kw < p.KW; ++kw, ++k) {
                    const float* pl = img + c * plane;
                    float* row = dst + int64_t(k) * kNR;
                    for (int j = 0; j < kNR; ++j) {
                        float v = 0.f;
                        if (j < jn) {
                            const int ih = r[j].ih0 + kh, iw = r[j].iw0 + kw;
                            if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
                                v = pl[int64_t(ih) * p.W + iw];
                        }
                        row[j] = v;
                    }
                }
    }
}

void apply_epilogue(int OC, int64_t P, int64_t p0, int np, const float* bias, const float* residual,
                    bool relu, float* y_img) {
    if (!bias && !residual && !relu) return;
    for (int oc = 0; oc < OC; ++oc) {
        float* row = y_img + oc * P + p0;
        const float* res = residual ? residual + oc * P + p0 : nullptr;
        const float b = bias ? bias[oc] : 0.f;
        for (int j = 0; j < np; ++j) {
            float v = row[j] + b;
            if (res) v += res[j];
            if (relu && v < 0.f) v = 0.f;
            row[j] = v;
        }
    }
}

void gemm_forward(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                  const float* residual, bool relu, float* y) {
    const int K = p.C * p.KH * p.KW;
    const int64_t P = int64_t(p.OH) * p.OW, groups = ceil_div(p.OC, kMR);
    float* Wp = buffer_floats(buffer(0), groups * K * kMR);
    pack_rows(w, p.OC, K, false, Wp);
    const int64_t blocks = ceil_div(P, kForwardPixels);
    parallel_for_each(int64_t(p.N) * blocks, [&](int64_t item) {
        const int64_t n = item / blocks, p0 = (item % blocks) * kForwardPixels;
        const int np = int(std::min(kForwardPixels, P - p0));
        thread_local std::vector<float> panel_store;
        float* panels = buffer_floats(panel_store, int64_t(K) * kForwardPixels);
        im2col_panels(p, x + n * p.C * int64_t(p.H) * p.W, p0, np, panels);
        float* y_img = y + n * p.OC * P;
        const int panels_n = int(ceil_div(np, kNR));
        // K in blocks: one block of a 16-pixel panel (16 KB) stays in L1 while every 6-row panel
        // of W (the block of W in L2) passes over it.
        for (int k0 = 0; k0 < K; k0 += kBlockK) {
            const int kc = std::min(kBlockK, K - k0);
            const Accum acc = k0 == 0 ? Accum::Overwrite : Accum::Add;
            for (int pj = 0; pj < panels_n; ++pj)
                for (int64_t g = 0; g < groups; ++g)
                    gemm_tile(int(std::min<int64_t>(kMR, p.OC - g * kMR)),
                              std::min(kNR, np - pj * kNR), kc, Wp + (g * K + k0) * kMR, 1, kMR,
                              panels + (int64_t(pj) * K + k0) * kNR, kNR,
                              y_img + g * kMR * P + p0 + pj * kNR, P, acc);
        }
        apply_epilogue(p.OC, P, p0, np, bias, residual ? residual + n * p.OC * P : nullptr, relu,
                       y_img);
    });
}

void gemm_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
    const int K = p.C * p.KH * p.KW;
    const int64_t P = int64_t(p.OH) * p.OW, groups = ceil_div(K, kMR);
    float* Wt = buffer_floats(buffer(0), groups * p.OC * kMR);
    pack_rows(w, K, p.OC, true, Wt);  // rows k of W^T, inner dimension oc
    const int64_t x_img = int64_t(p.C) * p.H * p.W;
    constexpr int kPanels = int(kForwardPixels / kNR);
    parallel_for_each(p.N, [&](int64_t n) {
        thread_local std::vector<float> dcol_store, dy_store;
        // dcol [panel][K rounded to 6][16]; dy of the block as 16-pixel panels [panel][OC][16].
        const int64_t Kr = round_up(K, kMR);
        float* dcol = buffer_floats(dcol_store, kPanels * Kr * kNR);
        float* dyp = buffer_floats(dy_store, int64_t(kPanels) * p.OC * kNR);
        float* dx_img = dx + n * x_img;
        std::fill(dx_img, dx_img + x_img, 0.f);
        const float* dy_img = dy + n * p.OC * P;
        for (int64_t p0 = 0; p0 < P; p0 += kForwardPixels) {
            const int np = int(std::min<int64_t>(kForwardPixels, P - p0));
            const int panels_n = int(ceil_div(np, kNR));
            for (int pj = 0; pj < panels_n; ++pj)
                for (int oc = 0; oc < p.OC; ++oc) {
                    float* dst = dyp + (int64_t(pj) * p.OC + oc) * kNR;
                    const float* src = dy_img + oc * P + p0 + pj * kNR;
                    const int m = std::min(kNR, np - pj * kNR);
                    for (int j = 0; j < kNR; ++j)
                        dst[j] = j < m ? src[j] : 0.f;
                }
            // Each 6-row panel of W^T (L1) passes over the block's pixel panels (L2).
            for (int64_t g = 0; g < groups; ++g)
                for (int pj = 0; pj < panels_n; ++pj)
                    gemm_tile(int(std::min<int64_t>(kMR, K - g * kMR)), kNR, p.OC,
                              Wt + g * p.OC * kMR, 1, kMR, dyp + int64_t(pj) * p.OC * kNR, kNR,
                              dcol + (pj * Kr + g * kMR) * kNR, kNR, Accum::Overwrite);
            // col2im of these np pixels.
            for (int j = 0; j < np; ++j) {
                const int64_t q = p0 + j;
                const float* col = dcol + (int64_t(j / kNR) * Kr) * kNR + (j % kNR);
                const int ih0 = int(q / p.OW) * p.stride - p.pad;
                const int iw0 = int(q % p.OW) * p.stride - p.pad;
                for (int c = 0, k = 0; c < p.C; ++c)
                    for (int kh = 0; kh < p.KH; ++kh) {
                        const int ih = ih0 + kh;
                        if (ih < 0 || ih >= p.H) {
                            k += p.KW;
                            continue;
                        }
                        float* row = dx_img + (int64_t(c) * p.H + ih) * p.W;
                        for (int kw = 0; kw < p.KW; ++kw, ++k) {
                            const int iw = iw0 + kw;
                            if (iw >= 0 && iw < p.W) row[iw] += col[int64_t(k) * kNR];
                        }
                    }
            }
        }
    });
}

void gemm_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                          Accum accum) {
    const int K = p.C * p.KH * p.KW;
    const int64_t Kp = round_up(K, kNR), P = int64_t(p.OH) * p.OW;
    const int threads = std::min<int>(thread_count(), p.N);
    float* partial = buffer_floats(buffer(0), int64_t(threads) * p.OC * Kp);
    const int64_t pixels = std::max<int64_t>(kNR, std::min<int64_t>(256, kPanelFloats / Kp));
    const int64_t x_img = int64_t(p.C) * p.H * p.W;
    parallel_for_each(threads, [&](int64_t t) {
        float* dW = partial + t * p.OC * Kp;
        std::fill(dW, dW + p.OC * Kp, 0.f);
        thread_local std::vector<float> col_store, dy_store;
        float* colT = buffer_floats(col_store, pixels * Kp);
        float* dyb = buffer_floats(dy_store, pixels * p.OC);
        // This thread's images as one run of pixels, in blocks that may span images (the late
        // layers have only 56 pixels an image: too short a GEMM depth on its own).
        const int64_t q_begin = p.N * t / threads * P, q_end = p.N * (t + 1) / threads * P;
        for (int64_t q0 = q_begin; q0 < q_end; q0 += pixels) {
            const int64_t np = std::min(pixels, q_end - q0);
            // dy of the block as (OC, np), read along each image's rows.
            for (int64_t j0 = 0; j0 < np;) {
                const int64_t n = (q0 + j0) / P, q = (q0 + j0) % P;
                const int64_t run = std::min(np - j0, P - q);
                for (int oc = 0; oc < p.OC; ++oc)
                    std::copy_n(dy + (n * p.OC + oc) * P + q, run, dyb + oc * pixels + j0);
                j0 += run;
            }
            for (int64_t j = 0; j < np; ++j) {  // colT[j][k]: pixel rows, k contiguous
                const int64_t n = (q0 + j) / P, q = (q0 + j) % P;
                const float* img = x + n * x_img;
                const Receptive r = receptive(p, q);
                const int ih0 = r.ih0, iw0 = r.iw0;
                float* row = colT + j * Kp;
                if (r.inside) {
                    const float* src = img + int64_t(ih0) * p.W + iw0;
                    for (int c = 0, k = 0; c < p.C; ++c)
                        for (int kh = 0; kh < p.KH; ++kh)
                            for (int kw = 0; kw < p.KW; ++kw, ++k)
                                row[k] = src[(int64_t(c) * p.H + kh) * p.W + kw];
                } else {
                    for (int c = 0, k = 0; c < p.C; ++c)
                        for (int kh = 0; kh < p.KH; ++kh)
                            for (int kw = 0; kw < p.KW; ++kw, ++k) {
                                const int ih = ih0 + kh, iw = iw0 + kw;
                                row[k] = (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
                                             ? img[(int64_t(c) * p.H + ih) * p.W + iw]
                                             : 0.f;
                            }
                }
                std::fill(row + K, row + Kp, 0.f);
            }
            // One 16-column panel of col^T (L1) under every 6-row block of dy (L2).
            for (int64_t k0 = 0; k0 < K; k0 += kNR)
                for (int64_t oc0 = 0; oc0 < p.OC; oc0 += kMR)
                    gemm_tile(int(std::min<int64_t>(kMR, p.OC - oc0)),
                              int(std::min<int64_t>(kNR, K - k0)), int(np), dyb + oc0 * pixels,
                              pixels, 1, colT + k0, Kp, dW + oc0 * Kp + k0, Kp, Accum::Add);
        }
    });
    parallel_for_each(p.OC, [&](int64_t oc) {
        for (int k = 0; k < K; ++k) {
            float s = 0.f;
            for (int t = 0; t < threads; ++t)
                s += partial[(t * p.OC + oc) * Kp + k];
            float& out = dw[oc * K + k];
            out = accum == Accum::Add ? out + s : s;
        }
    });
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y) {
    conv2d_forward_fused(p, x, w, nullptr, nullptr, false, y);
}

void conv2d_forward_fused(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                          const float* residual, bool relu, float* y) {
    if (winograd_applies(p)) {
        ConvEpilogue epi;
        epi.bias = bias;
        epi.residual = residual;
        epi.relu = relu;
        winograd_forward(p, x, w, false, epi, y);
        return;
    }
    gemm_forward(p, x, w, bias, residual, relu, y);
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
    if (winograd_applies(p)) {
        // dx = conv(dy, flipped W^T): a 3x3 stride-1 pad-1 convolution from OC to C channels.
        const Conv2dParams q = Conv2dParams::make(p.N, p.OC, p.OH, p.OW, p.C, 3, 3, 1, 1);
        winograd_forward(q, dy, w, true, ConvEpilogue{}, dx);
        return;
    }
    gemm_backward_data(p, dy, w, dx);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum) {
    if (winograd_applies(p)) {
        winograd_backward_weight(p, x, dy, dw, accum);
        return;
    }
    gemm_backward_weight(p, x, dy, dw, accum);
}

}  // namespace gnet::cpu_fast
