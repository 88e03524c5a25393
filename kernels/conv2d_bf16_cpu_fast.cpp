// conv2d_bf16, fast CPU backend: the bf16-faithful convolution (conv2d_bf16.h) at the speed of
// the float32 fast backend. bf16 operands convert to float32 exactly, so the float32 convolution
// of the converted operands is the specification's sum up to float32 summation order; the
// outputs are then rounded to bf16 once, as the tensor cores' epilogue does, and the batch-norm
// statistics come from the float32 outputs before rounding, as there.
//
// Each pass converts its channels-last bf16 operands to the planar float32 layout of
// cpu_fast::conv2d_* (conv2d_cpu_fast.cpp: Winograd F(4x4, 3x3) for the 3x3 stride-1 layers,
// whose float32 rounding stays below 1e-4 of the output range, 20x finer than bf16's 2^-9; a
// packed GEMM for the rest), runs it, and converts back. The conversions are O(size) passes
// beside the O(size x K) convolution; scratch belongs to the calling thread and is kept between
// calls, so a training step allocates nothing once warm.
#include <cmath>
#include <vector>

#include "kernels/conv2d_bf16.h"
#include "kernels/cpu_parallel.h"

namespace gnet::cpu_fast {
namespace {

enum Scratch { kX, kW, kY, kCount };

float* scratch(Scratch which, int64_t n) {
    thread_local std::vector<float> buffers[kCount];
    std::vector<float>& b = buffers[which];
    if (int64_t(b.size()) < n) b.resize(size_t(n));
    return b.data();
}

// (N, HW, C) bf16 -> (N, C, HW) float32.
void nhwc_to_nchw(int N, int64_t HW, int C, const Bf16* in, float* out) {
    parallel_for_each(int64_t(N) * C, [&](int64_t nc) {
        const int64_t n = nc / C, c = nc % C;
        const Bf16* src = in + n * HW * C + c;
        float* dst = out + nc * HW;
        for (int64_t q = 0; q < HW; ++q)
            dst[q] = to_float(src[q * C]);
    });
}

// (N, C, HW) float32 -> (N, HW, C) bf16, each value rounded once.
void nchw_to_nhwc(int N, int64_t HW, int C, const float* in, Bf16* out) {
    parallel_for_each(int64_t(N) * HW, [&](int64_t nq) {
        const int64_t n = nq / HW, q = nq % HW;
        const float* src = in + n * C * HW + q;
        Bf16* dst = out + nq * C;
        for (int c = 0; c < C; ++c)
            dst[c] = to_bf16(src[int64_t(c) * HW]);
    });
}

// Per-channel sum and sum of squares of (N, C, HW) float32, in double, in (n, q) order.
void channel_stats(int N, int64_t HW, int C, const float* y, ChannelStats* stats) {
    parallel_for_each(C, [&](int64_t c) {
        double s = 0, s2 = 0;
        for (int n = 0; n < N; ++n) {
            const float* row = y + (int64_t(n) * C + c) * HW;
            for (int64_t q = 0; q < HW; ++q) {
                s += row[q];
                s2 += double(row[q]) * row[q];
            }
        }
        stats->sum[c] = float(s);
        stats->sum_sq[c] = float(s2);
    });
}

// w (OC, KH, KW, C) bf16 "OHWI" -> (OC, C, KH, KW) float32.
void ohwi_to_oihw(const Conv2dParams& p, const Bf16* w, float* out) {
    const int taps = p.KH * p.KW;
    for (int oc = 0; oc < p.OC; ++oc)
        for (int t = 0; t < taps; ++t)
            for (int c = 0; c < p.C; ++c)
                out[(int64_t(oc) * p.C + c) * taps + t] =
                    to_float(w[(int64_t(oc) * taps + t) * p.C + c]);
}

// wt (C, KH, KW, OC) bf16 "IHWO" -> (OC, C, KH, KW) float32.
void ihwo_to_oihw(const Conv2dParams& p, const Bf16* wt, float* out) {
    const int taps = p.KH * p.KW;
    for (int c = 0; c < p.C; ++c)
        for (int t = 0; t < taps; ++t)
            for (int oc = 0; oc < p.OC; ++oc)
                out[(int64_t(oc) * p.C + c) * taps + t] =
                    to_float(wt[(int64_t(c) * taps + t) * p.OC + oc]);
}

}  // namespace

void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y,
                         ChannelStats* stats) {
    const int64_t HW = int64_t(p.H) * p.W, OHW = int64_t(p.OH) * p.OW;
    float* xf = scratch(kX, p.x_size());
    float* wf = scratch(kW, p.w_size());
    float* yf = scratch(kY, p.y_size());
    nhwc_to_nchw(p.N, HW, p.C, x, xf);
    ohwi_to_oihw(p, w, wf);
    conv2d_forward(p, xf, wf, yf);
    if (stats) channel_stats(p.N, OHW, p.OC, yf, stats);
    nchw_to_nhwc(p.N, OHW, p.OC, yf, y);
}

void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt, Bf16* dx) {
    const int64_t HW = int64_t(p.H) * p.W, OHW = int64_t(p.OH) * p.OW;
    float* dyf = scratch(kY, p.y_size());
    float* wf = scratch(kW, p.w_size());
    float* dxf = scratch(kX, p.x_size());
    nhwc_to_nchw(p.N, OHW, p.OC, dy, dyf);
    ihwo_to_oihw(p, wt, wf);
    conv2d_backward_data(p, dyf, wf, dxf);
    nchw_to_nhwc(p.N, HW, p.C, dxf, dx);
}

void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum) {
    const int64_t HW = int64_t(p.H) * p.W, OHW = int64_t(p.OH) * p.OW;
    float* xf = scratch(kX, p.x_size());
    float* dyf = scratch(kY, p.y_size());
    float* dwf = scratch(kW, p.w_size());
    nhwc_to_nchw(p.N, HW, p.C, x, xf);
    nhwc_to_nchw(p.N, OHW, p.OC, dy, dyf);
    conv2d_backward_weight(p, xf, dyf, dwf, Accum::Overwrite);
    // (OC, C, KH, KW) -> the master gradient's (OC, KH, KW, C).
    const int taps = p.KH * p.KW;
    for (int oc = 0; oc < p.OC; ++oc)
        for (int t = 0; t < taps; ++t)
            for (int c = 0; c < p.C; ++c) {
                const float g = dwf[(int64_t(oc) * p.C + c) * taps + t];
                float& d = dw[(int64_t(oc) * taps + t) * p.C + c];
                d = accum == Accum::Add ? d + g : g;
            }
}

}  // namespace gnet::cpu_fast
