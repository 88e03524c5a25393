// conv2d CPU twin: im2col + OpenBLAS sgemm. See conv2d.h for the maths.
//
// Images are processed in chunks of B. For a chunk, col(x) is the (C*KH*KW, B*OH*OW) matrix whose
// column (b, oh, ow) holds the receptive field of that output pixel (zeros in the padding), so
//   forward          tmp (OC, B*P)  = w (OC, K) * col (K, B*P),      then tmp -> y  (per image)
//   backward_data    dcol (K, B*P)  = w^T (K, OC) * dyc (OC, B*P),   then col2im dcol -> dx
//   backward_weight  dw (OC, K)    += dyc (OC, B*P) * col^T (B*P, K)
// with P = OH*OW and dyc = dy of the chunk laid out as (OC, B*P). Large maps (P >= 256) instead
// run one sgemm per image on its column block of col/dcol and its own slice of y/dy (no layout
// copy); small maps keep the one wide sgemm per chunk, which OpenBLAS runs far better than many
// skinny ones. OpenBLAS threads every sgemm; im2col/col2im and the layout copies, which are
// memory bound, are split over the chunk's images on std::threads.
// The scratch matrices belong to the calling thread (thread_local, grown, never shrunk).
#include "kernels/conv2d.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels/error.h"

namespace gnet {

Conv2dParams Conv2dParams::make(int N, int C, int H, int W, int OC, int KH, int KW, int stride,
                                int pad) {
    GNET_CHECK(N > 0 && C > 0 && H > 0 && W > 0 && OC > 0 && KH > 0 && KW > 0,
               "conv2d: every size must be positive, got N" + std::to_string(N) + " C" +
                   std::to_string(C) + " H" + std::to_string(H) + " W" + std::to_string(W) + " OC" +
                   std::to_string(OC) + " K" + std::to_string(KH) + "x" + std::to_string(KW));
    GNET_CHECK(stride > 0 && pad >= 0, "conv2d: stride must be > 0 and pad >= 0, got stride " +
                                           std::to_string(stride) + " pad " + std::to_string(pad));
    GNET_CHECK(H + 2 * pad >= KH && W + 2 * pad >= KW,
               "conv2d: kernel " + std::to_string(KH) + "x" + std::to_string(KW) +
                   " larger than the padded input " + std::to_string(H + 2 * pad) + "x" +
                   std::to_string(W + 2 * pad));
    Conv2dParams p{N, C, H, W, OC, KH, KW, stride, pad, 0, 0};
    p.OH = conv_out_size(H, KH, stride, pad);
    p.OW = conv_out_size(W, KW, stride, pad);
    return p;
}

namespace cpu {
namespace {

// Upper bound on the col matrix of one chunk (floats): big enough for large GEMMs, small
// enough to stay a modest allocation (32 MB).
constexpr int64_t kColBudgetFloats = int64_t(8) << 20;

int chunk_images(const Conv2dParams& p) {
    const int64_t per_image = int64_t(p.C) * p.KH * p.KW * p.OH * p.OW;
    const int64_t b = std::max<int64_t>(1, kColBudgetFloats / std::max<int64_t>(1, per_image));
    return int(std::min<int64_t>(b, p.N));
}

// Calls fn(i) for i in [0, n), split into contiguous ranges over the hardware threads.
template <class Fn>
void parallel_for(int n, const Fn& fn) {
    const int threads = std::min<int>(n, std::max(1u, std::thread::hardware_concurrency()));
    if (threads <= 1) {
        for (int i = 0; i < n; ++i)
            fn(i);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    auto range = [&](int t) {
        const int begin = int(int64_t(n) * t / threads), end = int(int64_t(n) * (t + 1) / threads);
        for (int i = begin; i < end; ++i)
            fn(i);
    };
    for (int t = 1; t < threads; ++t)
        pool.emplace_back(range, t);
    range(0);
    for (auto& th : pool)
        th.join();
}

// Images with at least this many output pixels get one GEMM each, reading and writing the
// image's own slice of y / dy in place; smaller images are batched into one wider GEMM (with a
// layout copy), which keeps OpenBLAS efficient on the small late-layer maps.
constexpr int64_t kPerImageGemmMinPixels = 256;

bool per_image_gemms(const Conv2dParams& p, int chunk) {
    return chunk == 1 || int64_t(p.OH) * p.OW >= kPerImageGemmMinPixels;
}

std::vector<float>& scratch(int which) {
    thread_local std::vector<float> buffers[2];
    return buffers[which];
}

float* scratch_floats(int which, int64_t n) {
    std::vector<float>& v = scratch(which);
    if (int64_t(v.size()) < n) v.resize(size_t(n));
    return v.data();
}

// col rows (c, kh, kw), columns [col0, col0 + P) of a matrix with leading dimension ld.
void im2col(const Conv2dParams& p, const float* x_img, float* col, int64_t ld, int64_t col0) {
    for (int c = 0; c < p.C; ++c)
        for (int kh = 0; kh < p.KH; ++kh)
            for (int kw = 0; kw < p.KW; ++kw) {
                float* row = col + (int64_t(c * p.KH + kh) * p.KW + kw) * ld + col0;
                const float* plane = x_img + int64_t(c) * p.H * p.W;
                for (int oh = 0; oh < p.OH; ++oh) {
                    float* out = row + int64_t(oh) * p.OW;
                    const int ih = oh * p.stride - p.pad + kh;
                    if (ih < 0 || ih >= p.H) {
                        std::memset(out, 0, sizeof(float) * p.OW);
                        continue;
                    }
                    const float* in = plane + int64_t(ih) * p.W;
                    for (int ow = 0; ow < p.OW; ++ow) {
                        const int iw = ow * p.stride - p.pad + kw;
                        out[ow] = (iw >= 0 && iw < p.W) ? in[iw] : 0.f;
                    }
                }
            }
}

// The adjoint of im2col: dx_img = sum over the col entries that read each input pixel (=).
void col2im(const Conv2dParams& p, const float* col, int64_t ld, int64_t col0, float* dx_img) {
    std::memset(dx_img, 0, sizeof(float) * size_t(p.C) * p.H * p.W);
    for (int c = 0; c < p.C; ++c)
        for (int kh = 0; kh < p.KH; ++kh)
            for (int kw = 0; kw < p.KW; ++kw) {
                const float* row = col + (int64_t(c * p.KH + kh) * p.KW + kw) * ld + col0;
                float* plane = dx_img + int64_t(c) * p.H * p.W;
                for (int oh = 0; oh < p.OH; ++oh) {
                    const int ih = oh * p.stride - p.pad + kh;
                    if (ih < 0 || ih >= p.H) continue;
                    const float* in = row + int64_t(oh) * p.OW;
                    float* out = plane + int64_t(ih) * p.W;
                    for (int ow = 0; ow < p.OW; ++ow) {
                        const int iw = ow * p.stride - p.pad + kw;
                        if (iw >= 0 && iw < p.W) out[iw] += in[ow];
                    }
                }
            }
}

// (OC, B*P) chunk matrix <-> B images of (OC, P).
void gather_chunk(const float* t, int OC, int64_t P, int B, float* m) {
    parallel_for(B, [&](int b) {
        for (int oc = 0; oc < OC; ++oc)
            std::memcpy(m + int64_t(oc) * B * P + b * P, t + (int64_t(b) * OC + oc) * P,
                        sizeof(float) * P);
    });
}
void scatter_chunk(const float* m, int OC, int64_t P, int B, float* t) {
    parallel_for(B, [&](int b) {
        for (int oc = 0; oc < OC; ++oc)
            std::memcpy(t + (int64_t(b) * OC + oc) * P, m + int64_t(oc) * B * P + b * P,
                        sizeof(float) * P);
    });
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y) {
    const int K = p.C * p.KH * p.KW;
    const int64_t P = int64_t(p.OH) * p.OW;
    const int64_t x_img = int64_t(p.C) * p.H * p.W, y_img = int64_t(p.OC) * P;
    const int B = chunk_images(p);
    const bool per_image = per_image_gemms(p, B);
    float* col = scratch_floats(0, int64_t(K) * B * P);
    float* tmp = per_image ? nullptr : scratch_floats(1, int64_t(p.OC) * B * P);
    for (int n0 = 0; n0 < p.N; n0 += B) {
        const int nb = std::min(B, p.N - n0);
        const int64_t ld = nb * P;
        parallel_for(nb, [&](int b) { im2col(p, x + (n0 + b) * x_img, col, ld, b * P); });
        if (per_image) {
            for (int b = 0; b < nb; ++b)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p.OC, int(P), K, 1.f, w, K,
                            col + b * P, int(ld), 0.f, y + (n0 + b) * y_img, int(P));
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p.OC, int(ld), K, 1.f, w, K, col,
                        int(ld), 0.f, tmp, int(ld));
            scatter_chunk(tmp, p.OC, P, nb, y + n0 * y_img);
        }
    }
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
    const int K = p.C * p.KH * p.KW;
    const int64_t P = int64_t(p.OH) * p.OW;
    const int64_t x_img = int64_t(p.C) * p.H * p.W, y_img = int64_t(p.OC) * P;
    const int B = chunk_images(p);
    const bool per_image = per_image_gemms(p, B);
    float* dcol = scratch_floats(0, int64_t(K) * B * P);
    float* dyc = per_image ? nullptr : scratch_floats(1, int64_t(p.OC) * B * P);
    for (int n0 = 0; n0 < p.N; n0 += B) {
        const int nb = std::min(B, p.N - n0);
        const int64_t ld = nb * P;
        if (per_image) {
            for (int b = 0; b < nb; ++b)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, int(P), p.OC, 1.f, w, K,
                            dy + (n0 + b) * y_img, int(P), 0.f, dcol + b * P, int(ld));
        } else {
            gather_chunk(dy + n0 * y_img, p.OC, P, nb, dyc);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, int(ld), p.OC, 1.f, w, K, dyc,
                        int(ld), 0.f, dcol, int(ld));
        }
        parallel_for(nb, [&](int b) { col2im(p, dcol, ld, b * P, dx + (n0 + b) * x_img); });
    }
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            Accum accum) {
    const int K = p.C * p.KH * p.KW;
    const int64_t P = int64_t(p.OH) * p.OW;
    const int64_t x_img = int64_t(p.C) * p.H * p.W, y_img = int64_t(p.OC) * P;
    const int B = chunk_images(p);
    const bool per_image = per_image_gemms(p, B);
    float* col = scratch_floats(0, int64_t(K) * B * P);
    float* dyc = per_image ? nullptr : scratch_floats(1, int64_t(p.OC) * B * P);
    for (int n0 = 0; n0 < p.N; n0 += B) {
        const int nb = std::min(B, p.N - n0);
        const int64_t ld = nb * P;
        parallel_for(nb, [&](int b) { im2col(p, x + (n0 + b) * x_img, col, ld, b * P); });
        if (per_image) {
            for (int b = 0; b < nb; ++b) {
                const float beta = (n0 + b == 0 && accum == Accum::Overwrite) ? 0.f : 1.f;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.OC, K, int(P), 1.f,
                            dy + (n0 + b) * y_img, int(P), col + b * P, int(ld), beta, dw, K);
            }
        } else {
            gather_chunk(dy + n0 * y_img, p.OC, P, nb, dyc);
            const float beta = (n0 == 0 && accum == Accum::Overwrite) ? 0.f : 1.f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.OC, K, int(ld), 1.f, dyc,
                        int(ld), col, int(ld), beta, dw, K);
        }
    }
}

}  // namespace cpu
}  // namespace gnet
