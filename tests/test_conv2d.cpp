// conv2d CPU twin (im2col + sgemm): against a direct-loop reference with double accumulators over
// a matrix of awkward shapes, against central finite differences, Accum semantics, shape checks.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/error.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// im2col+sgemm (float) against the direct double loops: only float rounding of K-term sums.
constexpr Tolerance kTwinVsDirect{1e-4, 1e-4};
// Finite differences: conv is linear in x and in w, so a large step is exact up to the float
// rounding of the forward pass, summed in double.
constexpr Tolerance kFiniteDiff{2e-3, 2e-3};
constexpr double kFdStep = 0.5;

std::vector<float> random_vector(int64_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v)
        e = u(rng);
    return v;
}

// --- the independent oracle: direct loops, double accumulators -----------------------------------
double x_at(const Conv2dParams& p, const std::vector<float>& x, int n, int c, int ih, int iw) {
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return 0.0;
    return x[((size_t(n) * p.C + c) * p.H + ih) * p.W + iw];
}

std::vector<double> direct_forward(const Conv2dParams& p, const std::vector<float>& x,
                                   const std::vector<float>& w) {
    std::vector<double> y(size_t(p.y_size()));
    for (int n = 0; n < p.N; ++n)
        for (int oc = 0; oc < p.OC; ++oc)
            for (int oh = 0; oh < p.OH; ++oh)
                for (int ow = 0; ow < p.OW; ++ow) {
                    double s = 0;
                    for (int c = 0; c < p.C; ++c)
                        for (int kh = 0; kh < p.KH; ++kh)
                            for (int kw = 0; kw < p.KW; ++kw)
                                s += double(w[((size_t(oc) * p.C + c) * p.KH + kh) * p.KW + kw]) *
                                     x_at(p, x, n, c, oh * p.stride - p.pad + kh,
                                          ow * p.stride - p.pad + kw);
                    y[((size_t(n) * p.OC + oc) * p.OH + oh) * p.OW + ow] = s;
                }
    return y;
}

// dx by gathering: for every input pixel, the output pixels whose window covers it.
std::vector<double> direct_backward_data(const Conv2dParams& p, const std::vector<float>& dy,
                                         const std::vector<float>& w) {
    std::vector<double> dx(size_t(p.x_size()));
    for (int n = 0; n < p.N; ++n)
        for (int c = 0; c < p.C; ++c)
            for (int ih = 0; ih < p.H; ++ih)
                for (int iw = 0; iw < p.W; ++iw) {
                    double s = 0;
                    for (int oc = 0; oc < p.OC; ++oc)
                        for (int kh = 0; kh < p.KH; ++kh)
                            for (int kw = 0; kw < p.KW; ++kw) {
                                const int th = ih + p.pad - kh, tw = iw + p.pad - kw;
                                if (th < 0 || tw < 0 || th % p.stride || tw % p.stride) continue;
                                const int oh = th / p.stride, ow = tw / p.stride;
                                if (oh >= p.OH || ow >= p.OW) continue;
                                s += double(w[((size_t(oc) * p.C + c) * p.KH + kh) * p.KW + kw]) *
                                     dy[((size_t(n) * p.OC + oc) * p.OH + oh) * p.OW + ow];
                            }
                    dx[((size_t(n) * p.C + c) * p.H + ih) * p.W + iw] = s;
                }
    return dx;
}

std::vector<double> direct_backward_weight(const Conv2dParams& p, const std::vector<float>& x,
                                           const std::vector<float>& dy) {
    std::vector<double> dw(size_t(p.w_size()));
    for (int oc = 0; oc < p.OC; ++oc)
        for (int c = 0; c < p.C; ++c)
            for (int kh = 0; kh < p.KH; ++kh)
                for (int kw = 0; kw < p.KW; ++kw) {
                    double s = 0;
                    for (int n = 0; n < p.N; ++n)
                        for (int oh = 0; oh < p.OH; ++oh)
                            for (int ow = 0; ow < p.OW; ++ow)
                                s += double(dy[((size_t(n) * p.OC + oc) * p.OH + oh) * p.OW + ow]) *
                                     x_at(p, x, n, c, oh * p.stride - p.pad + kh,
                                          ow * p.stride - p.pad + kw);
                    dw[((size_t(oc) * p.C + c) * p.KH + kh) * p.KW + kw] = s;
                }
    return dw;
}

struct Shape {
    const char* name;
    int N, C, H, W, OC, KH, KW, stride, pad;
    Conv2dParams params() const { return Conv2dParams::make(N, C, H, W, OC, KH, KW, stride, pad); }
};

const std::vector<Shape>& awkward_shapes() {
    static const std::vector<Shape> shapes = {
        {"1x1/2 downsample, odd H/W", 2, 5, 9, 7, 6, 1, 1, 2, 0},
        {"3x3/1 pad1", 2, 3, 8, 9, 5, 3, 3, 1, 1},
        {"3x3/2 pad1, N=1, C=17, odd H/W", 1, 17, 11, 9, 7, 3, 3, 2, 1},
        {"7x7/2 pad3 stem, C=1, odd H/W", 2, 1, 15, 13, 4, 7, 7, 2, 3},
        {"3x3/1 no pad, N=1", 1, 5, 6, 6, 3, 3, 3, 1, 0},
        {"5x5/1 pad2, N=3", 3, 3, 5, 5, 2, 5, 5, 1, 2},
        {"3x2/3 pad1, non-square kernel, stride 3", 2, 4, 7, 5, 3, 3, 2, 3, 1},
        {"1x1/1, OC=1", 2, 3, 4, 5, 1, 1, 1, 1, 0},
        // Big enough that the twin splits the batch into chunks (2 + 1 images): large maps
        // (one GEMM per image) and small maps (one wide GEMM per chunk).
        {"3x3/1 pad1, C=64, several chunks, per-image GEMMs", 3, 64, 64, 108, 4, 3, 3, 1, 1},
        {"3x3/1 pad1, C=2048, several chunks, chunk GEMMs", 3, 2048, 15, 15, 2, 3, 3, 1, 1},
    };
    return shapes;
}

// L = sum(y * r) in double, y from the twin's forward.
double loss(const Conv2dParams& p, const std::vector<float>& x, const std::vector<float>& w,
            const std::vector<float>& r) {
    std::vector<float> y(size_t(p.y_size()));
    cpu::conv2d_forward(p, x.data(), w.data(), y.data());
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i)
        s += double(y[i]) * r[i];
    return s;
}

}  // namespace

TEST_CASE("Conv2dParams::make: output sizes and bad shapes") {
    Conv2dParams p = Conv2dParams::make(2, 1, 128, 431, 64, 7, 7, 2, 3);
    CHECK(p.OH == 64);
    CHECK(p.OW == 216);
    p = Conv2dParams::make(2, 64, 32, 108, 128, 1, 1, 2, 0);
    CHECK(p.OH == 16);
    CHECK(p.OW == 54);
    p = Conv2dParams::make(2, 256, 8, 27, 512, 3, 3, 2, 1);
    CHECK(p.OH == 4);
    CHECK(p.OW == 14);
    CHECK_THROWS_AS(Conv2dParams::make(0, 1, 8, 8, 4, 3, 3, 1, 1), Error);
    CHECK_THROWS_AS(Conv2dParams::make(1, 1, 8, 8, 4, 3, 3, 0, 1), Error);
    CHECK_THROWS_WITH(Conv2dParams::make(1, 1, 2, 2, 4, 5, 5, 1, 0),
                      doctest::Contains("conv2d_cpu.cpp"));
}

TEST_CASE("conv2d CPU twin matches the direct reference on awkward shapes") {
    unsigned seed = 1;
    for (const Shape& s : awkward_shapes()) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        const auto x = random_vector(p.x_size(), seed++);
        const auto w = random_vector(p.w_size(), seed++);
        const auto dy = random_vector(p.y_size(), seed++);

        std::vector<float> y(size_t(p.y_size()), 7.f);
        cpu::conv2d_forward(p, x.data(), w.data(), y.data());
        GNET_CHECK_CLOSE(y, direct_forward(p, x, w), kTwinVsDirect);

        std::vector<float> dx(size_t(p.x_size()), 7.f);
        cpu::conv2d_backward_data(p, dy.data(), w.data(), dx.data());
        GNET_CHECK_CLOSE(dx, direct_backward_data(p, dy, w), kTwinVsDirect);

        std::vector<float> dw(size_t(p.w_size()), 7.f);
        cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);
        GNET_CHECK_CLOSE(dw, direct_backward_weight(p, x, dy), kTwinVsDirect);
    }
}

TEST_CASE("conv2d backward against central finite differences") {
    const std::vector<Shape> shapes = {
        {"3x3/2 pad1", 2, 3, 7, 6, 4, 3, 3, 2, 1},
        {"1x1/2", 2, 3, 5, 5, 2, 1, 1, 2, 0},
        {"7x7/2 pad3, C=1", 1, 1, 9, 11, 3, 7, 7, 2, 3},
    };
    unsigned seed = 100;
    for (const Shape& s : shapes) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        auto x = random_vector(p.x_size(), seed++);
        auto w = random_vector(p.w_size(), seed++);
        const auto r = random_vector(p.y_size(), seed++);  // dL/dy

        std::vector<float> dx(size_t(p.x_size())), dw(size_t(p.w_size()));
        cpu::conv2d_backward_data(p, r.data(), w.data(), dx.data());
        cpu::conv2d_backward_weight(p, x.data(), r.data(), dw.data(), Accum::Overwrite);

        std::vector<double> fd_x(x.size()), fd_w(w.size());
        for (size_t i = 0; i < x.size(); ++i) {
            const float keep = x[i];
            x[i] = float(keep + kFdStep);
            const double up = loss(p, x, w, r);
            x[i] = float(keep - kFdStep);
            const double down = loss(p, x, w, r);
            x[i] = keep;
            fd_x[i] = (up - down) / (2 * kFdStep);
        }
        for (size_t i = 0; i < w.size(); ++i) {
            const float keep = w[i];
            w[i] = float(keep + kFdStep);
            const double up = loss(p, x, w, r);
            w[i] = float(keep - kFdStep);
            const double down = loss(p, x, w, r);
            w[i] = keep;
            fd_w[i] = (up - down) / (2 * kFdStep);
        }
        GNET_CHECK_CLOSE(dx, fd_x, kFiniteDiff);
        GNET_CHECK_CLOSE(dw, fd_w, kFiniteDiff);
    }
}

TEST_CASE("conv2d backward_weight: Accum::Add adds, Overwrite replaces") {
    const Conv2dParams p = Conv2dParams::make(2, 3, 7, 9, 4, 3, 3, 2, 1);
    const auto x = random_vector(p.x_size(), 7);
    const auto dy = random_vector(p.y_size(), 8);
    const auto start = random_vector(p.w_size(), 9);
    const auto ref = direct_backward_weight(p, x, dy);

    std::vector<float> dw = start;
    cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Add);
    std::vector<double> expect(ref.size());
    for (size_t i = 0; i < ref.size(); ++i)
        expect[i] = ref[i] + start[i];
    GNET_CHECK_CLOSE(dw, expect, kTwinVsDirect);

    cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);
    GNET_CHECK_CLOSE(dw, ref, kTwinVsDirect);
}

TEST_CASE("conv2d forward known answer: a centred one-hot kernel copies the input") {
    // 3x3 kernel with a single 1 in the middle, pad 1, stride 1: y == x (per channel pairs).
    const Conv2dParams p = Conv2dParams::make(1, 2, 4, 5, 2, 3, 3, 1, 1);
    std::vector<float> w(size_t(p.w_size()), 0.f);
    w[(0 * 2 + 0) * 9 + 4] = 1.f;  // oc 0 <- c 0
    w[(1 * 2 + 1) * 9 + 4] = 2.f;  // oc 1 <- 2 * c 1
    const auto x = random_vector(p.x_size(), 3);
    std::vector<float> y(size_t(p.y_size()));
    cpu::conv2d_forward(p, x.data(), w.data(), y.data());
    for (int i = 0; i < 20; ++i) {
        CHECK(y[i] == x[i]);
        CHECK(y[20 + i] == 2.f * x[20 + i]);
    }
}
