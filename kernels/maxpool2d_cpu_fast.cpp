// Max pooling, fast CPU backend (see maxpool2d.h): the reference's window walk and tie rules
// (bit-identical results), planes spread over the worker pool, and no bounds checks for windows
// that lie inside the input.
#include <cmath>
#include <limits>

#include "kernels/cpu_parallel.h"
#include "kernels/error.h"
#include "kernels/maxpool2d.h"

namespace gnet::cpu_fast {

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax) {
    const int64_t in_plane = int64_t(p.H) * p.W, out_plane = int64_t(p.OH) * p.OW;
    parallel_for_each(int64_t(p.N) * p.C, [&](int64_t plane) {
        const float* xp = x + plane * in_plane;
        float* yp = y + plane * out_plane;
        int32_t* ap = argmax + plane * out_plane;
        for (int oh = 0; oh < p.OH; ++oh) {
            const int h0 = oh * p.stride - p.pad;
            const bool rows_in = h0 >= 0 && h0 + p.K <= p.H;
            for (int ow = 0; ow < p.OW; ++ow) {
                const int w0 = ow * p.stride - p.pad;
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
