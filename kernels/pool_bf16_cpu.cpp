// pool_bf16 CPU twin: the specification (pool_bf16.h) as plain loops.
#include <cmath>
#include <vector>

#include "kernels/pool_bf16.h"

namespace gnet::cpu {

void maxpool2d_bf16_forward(const Pool2dParams& p, const Bf16* x, Bf16* y, int32_t* argmax) {
    for (int n = 0; n < p.N; ++n)
        for (int oh = 0; oh < p.OH; ++oh)
            for (int ow = 0; ow < p.OW; ++ow)
                for (int c = 0; c < p.C; ++c) {
                    float best = -INFINITY;
                    int32_t at = -1;
                    for (int kh = 0; kh < p.K; ++kh) {
                        const int ih = oh * p.stride - p.pad + kh;
                        if (ih < 0 || ih >= p.H) continue;
                        for (int kw = 0; kw < p.K; ++kw) {
                            const int iw = ow * p.stride - p.pad + kw;
                            if (iw < 0 || iw >= p.W) continue;
                            const float v =
                                to_float(x[((int64_t(n) * p.H + ih) * p.W + iw) * p.C + c]);
                            if (at < 0 || v > best || std::isnan(v)) {
                                best = v;
                                at = ih * p.W + iw;
                            }
                        }
                    }
                    const int64_t o = ((int64_t(n) * p.OH + oh) * p.OW + ow) * p.C + c;
                    y[o] = to_bf16(best);
                    argmax[o] = at;
                }
}

void maxpool2d_bf16_backward(const Pool2dParams& p, const Bf16* dy, const int32_t* argmax,
                             Bf16* dx) {
    std::vector<float> acc(size_t(p.N) * p.H * p.W * p.C, 0.0f);
    for (int n = 0; n < p.N; ++n)
        for (int oh = 0; oh < p.OH; ++oh)
            for (int ow = 0; ow < p.OW; ++ow)
                for (int c = 0; c < p.C; ++c) {
                    const int64_t o = ((int64_t(n) * p.OH + oh) * p.OW + ow) * p.C + c;
                    acc[size_t((int64_t(n) * p.H * p.W + argmax[o]) * p.C + c)] += to_float(dy[o]);
                }
    for (size_t i = 0; i < acc.size(); ++i)
        dx[i] = to_bf16(acc[i]);
}

void avgpool_bf16_forward(int N, int HW, int C, const Bf16* x, float* y) {
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
            float s = 0.0f;
            for (int i = 0; i < HW; ++i)
                s += to_float(x[(int64_t(n) * HW + i) * C + c]);
            y[int64_t(n) * C + c] = s / float(HW);
        }
}

void avgpool_bf16_backward(int N, int HW, int C, const float* dy, Bf16* dx) {
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < HW; ++i)
            for (int c = 0; c < C; ++c)
                dx[(int64_t(n) * HW + i) * C + c] = to_bf16(dy[int64_t(n) * C + c] / float(HW));
}

void to_bf16_copy(int64_t n, const float* x, Bf16* y) {
    for (int64_t i = 0; i < n; ++i)
        y[i] = to_bf16(x[i]);
}

void add_bf16(int64_t n, const Bf16* a, const Bf16* b, Bf16* y) {
    for (int64_t i = 0; i < n; ++i)
        y[i] = to_bf16(to_float(a[i]) + to_float(b[i]));
}

}  // namespace gnet::cpu
