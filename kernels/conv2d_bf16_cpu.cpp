// conv2d_bf16 CPU twin: the specification of the mixed-precision convolution (conv2d_bf16.h) as
// plain loops. Operands are bf16, every product and sum float32, each bf16 output rounded once.
#include <vector>

#include "kernels/conv2d_bf16.h"

namespace gnet::cpu {

void conv2d_bf16_forward(const Conv2dParams& p, const Bf16* x, const Bf16* w, Bf16* y,
                         ChannelStats* stats) {
    std::vector<double> sum(stats ? p.OC : 0), sum_sq(stats ? p.OC : 0);
    for (int n = 0; n < p.N; ++n)
        for (int oh = 0; oh < p.OH; ++oh)
            for (int ow = 0; ow < p.OW; ++ow) {
                Bf16* out = y + ((int64_t(n) * p.OH + oh) * p.OW + ow) * p.OC;
                for (int oc = 0; oc < p.OC; ++oc) {
                    float acc = 0.0f;
                    for (int kh = 0; kh < p.KH; ++kh) {
                        const int ih = oh * p.stride - p.pad + kh;
                        if (ih < 0 || ih >= p.H) continue;
                        for (int kw = 0; kw < p.KW; ++kw) {
                            const int iw = ow * p.stride - p.pad + kw;
                            if (iw < 0 || iw >= p.W) continue;
                            const Bf16* xs = x + ((int64_t(n) * p.H + ih) * p.W + iw) * p.C;
                            const Bf16* ws = w + ((int64_t(oc) * p.KH + kh) * p.KW + kw) * p.C;
                            for (int c = 0; c < p.C; ++c)
                                acc += to_float(xs[c]) * to_float(ws[c]);
                        }
                    }
                    out[oc] = to_bf16(acc);
                    if (stats) {
                        sum[oc] += acc;
                        sum_sq[oc] += double(acc) * acc;
                    }
                }
            }
    if (stats)
        for (int oc = 0; oc < p.OC; ++oc) {
            stats->sum[oc] = float(sum[oc]);
            stats->sum_sq[oc] = float(sum_sq[oc]);
        }
}

void conv2d_bf16_backward_data(const Conv2dParams& p, const Bf16* dy, const Bf16* wt, Bf16* dx) {
    for (int n = 0; n < p.N; ++n)
        for (int h = 0; h < p.H; ++h)
            for (int wi = 0; wi < p.W; ++wi) {
                Bf16* out = dx + ((int64_t(n) * p.H + h) * p.W + wi) * p.C;
                for (int c = 0; c < p.C; ++c) {
                    float acc = 0.0f;
                    for (int kh = 0; kh < p.KH; ++kh) {
                        const int th = h + p.pad - kh;  // = oh * stride when a tap reaches h
                        if (th < 0 || th % p.stride || th / p.stride >= p.OH) continue;
                        for (int kw = 0; kw < p.KW; ++kw) {
                            const int tw = wi + p.pad - kw;
                            if (tw < 0 || tw % p.stride || tw / p.stride >= p.OW) continue;
                            const Bf16* ds =
                                dy +
                                ((int64_t(n) * p.OH + th / p.stride) * p.OW + tw / p.stride) * p.OC;
                            const Bf16* ws = wt + ((int64_t(c) * p.KH + kh) * p.KW + kw) * p.OC;
                            for (int oc = 0; oc < p.OC; ++oc)
                                acc += to_float(ds[oc]) * to_float(ws[oc]);
                        }
                    }
                    out[c] = to_bf16(acc);
                }
            }
}

void conv2d_bf16_backward_weight(const Conv2dParams& p, const Bf16* x, const Bf16* dy, float* dw,
                                 Accum accum) {
    // Sums in pixel order (n, oh, ow) for every weight.
    std::vector<float> acc(size_t(p.w_size()), 0.0f);
    std::vector<float> d(p.OC), xs(p.C);
    for (int n = 0; n < p.N; ++n)
        for (int oh = 0; oh < p.OH; ++oh)
            for (int ow = 0; ow < p.OW; ++ow) {
                const Bf16* ds = dy + ((int64_t(n) * p.OH + oh) * p.OW + ow) * p.OC;
                for (int oc = 0; oc < p.OC; ++oc)
                    d[oc] = to_float(ds[oc]);
                for (int kh = 0; kh < p.KH; ++kh) {
                    const int ih = oh * p.stride - p.pad + kh;
                    if (ih < 0 || ih >= p.H) continue;
                    for (int kw = 0; kw < p.KW; ++kw) {
                        const int iw = ow * p.stride - p.pad + kw;
                        if (iw < 0 || iw >= p.W) continue;
                        const Bf16* xp = x + ((int64_t(n) * p.H + ih) * p.W + iw) * p.C;
                        for (int c = 0; c < p.C; ++c)
                            xs[c] = to_float(xp[c]);
                        for (int oc = 0; oc < p.OC; ++oc) {
                            float* a = acc.data() + ((int64_t(oc) * p.KH + kh) * p.KW + kw) * p.C;
                            for (int c = 0; c < p.C; ++c)
                                a[c] += d[oc] * xs[c];
                        }
                    }
                }
            }
    for (int64_t i = 0; i < p.w_size(); ++i)
        dw[i] = accum == Accum::Add ? dw[i] + acc[size_t(i)] : acc[size_t(i)];
}

void conv2d_bf16_ihwo(const Conv2dParams& p, const Bf16* w, Bf16* wt) {
    const int taps = p.KH * p.KW;
    for (int oc = 0; oc < p.OC; ++oc)
        for (int t = 0; t < taps; ++t)
            for (int c = 0; c < p.C; ++c)
                wt[(int64_t(c) * taps + t) * p.OC + oc] = w[(int64_t(oc) * taps + t) * p.C + c];
}

}  // namespace gnet::cpu
