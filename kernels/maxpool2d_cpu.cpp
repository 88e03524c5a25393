// Max pooling CPU twin.
#include <cmath>
#include <limits>
#include <string>

#include "kernels/error.h"
#include "kernels/maxpool2d.h"

namespace gnet {

Pool2dParams Pool2dParams::make(int N, int C, int H, int W, int K, int stride, int pad) {
    GNET_CHECK(N > 0 && C > 0 && H > 0 && W > 0, "maxpool2d: input shape must be positive");
    GNET_CHECK(K > 0 && stride > 0 && pad >= 0 && pad <= K / 2,
               "maxpool2d: need K > 0, stride > 0, 0 <= pad <= K/2; got K=" + std::to_string(K) +
                   " stride=" + std::to_string(stride) + " pad=" + std::to_string(pad));
    Pool2dParams p{N,
                   C,
                   H,
                   W,
                   K,
                   stride,
                   pad,
                   conv_out_size(H, K, stride, pad),
                   conv_out_size(W, K, stride, pad)};
    GNET_CHECK(p.OH > 0 && p.OW > 0, "maxpool2d: the window does not fit the input (" +
                                         std::to_string(H) + "x" + std::to_string(W) + ")");
    return p;
}

namespace cpu {

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax) {
    for (int64_t plane = 0; plane < int64_t(p.N) * p.C; ++plane) {
        const float* xp = x + plane * p.H * p.W;
        for (int oh = 0; oh < p.OH; ++oh) {
            for (int ow = 0; ow < p.OW; ++ow) {
                float best = -std::numeric_limits<float>::infinity();
                int32_t best_i = -1;
                for (int kh = 0; kh < p.K; ++kh) {
                    const int h = oh * p.stride - p.pad + kh;
                    if (h < 0 || h >= p.H) continue;
                    for (int kw = 0; kw < p.K; ++kw) {
                        const int w = ow * p.stride - p.pad + kw;
                        if (w < 0 || w >= p.W) continue;
                        const float v = xp[h * p.W + w];
                        if (best_i < 0 || v > best || std::isnan(v)) {
                            best = v;
                            best_i = h * p.W + w;
                        }
                    }
                }
                const int64_t o = plane * p.OH * p.OW + int64_t(oh) * p.OW + ow;
                y[o] = best;
                argmax[o] = best_i;
            }
        }
    }
}

void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx) {
    const int64_t in_plane = int64_t(p.H) * p.W, out_plane = int64_t(p.OH) * p.OW;
    for (int64_t i = 0; i < int64_t(p.N) * p.C * in_plane; ++i)
        dx[i] = 0.f;
    for (int64_t plane = 0; plane < int64_t(p.N) * p.C; ++plane) {
        for (int64_t o = 0; o < out_plane; ++o) {
            const int32_t a = argmax[plane * out_plane + o];
            GNET_CHECK(a >= 0 && a < in_plane, "maxpool2d_backward: argmax out of range");
            dx[plane * in_plane + a] += dy[plane * out_plane + o];
        }
    }
}

}  // namespace cpu
}  // namespace gnet
