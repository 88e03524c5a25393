// Max pooling CPU twin: a 4x4 example by hand (padding, ties: first maximum wins), an input that
// wins several windows, finite differences on tie-free inputs, and argument checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/error.h"
#include "kernels/maxpool2d.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr Tolerance kFiniteDiff{
    1e-3, 1e-3};                // piecewise linear: differences are exact but for float rounding
constexpr double kStep = 1e-2;  // values are 0.1 apart: no window changes its winner

// Distinct values (a shuffled ramp, spacing 0.1, centred on 0) so that no window has a tie.
std::vector<float> tie_free(size_t n, unsigned seed) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = 0.1f * (float(i) - float(n) / 2);
    std::shuffle(v.begin(), v.end(), std::mt19937(seed));
    return v;
}

}  // namespace

TEST_CASE("maxpool2d 3x3/2 pad 1 on a 4x4 plane, by hand, with ties") {
    const Pool2dParams p = Pool2dParams::make(1, 1, 4, 4, 3, 2, 1);
    REQUIRE(p.OH == 2);
    REQUIRE(p.OW == 2);
    // clang-format off
    const std::vector<float> x = {3, 1, 3, 0,
                                  0, 3, 2, 2,
                                  1, 0, 2, 5,
                                  4, 4, 1, 5};
    // clang-format on
    std::vector<float> y(4);
    std::vector<int32_t> am(4);
    cpu::maxpool2d_forward(p, x.data(), y.data(), am.data());
    // Windows (rows x cols): [0,1]x[0,1], [0,1]x[1,3], [1,3]x[0,1], [1,3]x[1,3]; each has a tie
    // and the first maximum in row-major order wins.
    CHECK(y == std::vector<float>{3, 3, 4, 5});
    CHECK(am == std::vector<int32_t>{0, 2, 12, 11});
    const std::vector<float> dy = {1, 10, 100, 1000};
    std::vector<float> dx(16, -1.f);
    cpu::maxpool2d_backward(p, dy.data(), am.data(), dx.data());
    std::vector<float> want(16, 0.f);
    want[0] = 1, want[2] = 10, want[12] = 100, want[11] = 1000;
    CHECK(dx == want);
}

TEST_CASE("maxpool2d: one input winning all four windows collects all their gradients") {
    const Pool2dParams p = Pool2dParams::make(1, 1, 4, 4, 3, 2, 1);
    std::vector<float> x(16);
    for (int i = 0; i < 16; ++i)
        x[i] = -1.f - float(i);  // all negative: padding must not win
    x[5] = 100.f;                // (1, 1) lies in every window
    std::vector<float> y(4), dx(16);
    std::vector<int32_t> am(4);
    cpu::maxpool2d_forward(p, x.data(), y.data(), am.data());
    CHECK(y == std::vector<float>{100, 100, 100, 100});
    const std::vector<float> dy = {1, 10, 100, 1000};
    cpu::maxpool2d_backward(p, dy.data(), am.data(), dx.data());
    std::vector<float> want(16, 0.f);
    want[5] = 1111.f;
    CHECK(dx == want);

    // All-negative input with the maximum at a corner: the padded -inf never wins.
    std::vector<float> neg(16);
    for (int i = 0; i < 16; ++i)
        neg[i] = -10.f - float(i);
    cpu::maxpool2d_forward(p, neg.data(), y.data(), am.data());
    CHECK(y == std::vector<float>{-10, -11, -14, -15});
    CHECK(am == std::vector<int32_t>{0, 1, 4, 5});
}

TEST_CASE("maxpool2d backward matches central differences") {
    struct Shape {
        int N, C, H, W, K, stride, pad;
    };
    for (Shape s :
         {Shape{2, 3, 7, 9, 3, 2, 1}, Shape{1, 2, 6, 5, 2, 2, 0}, Shape{1, 1, 5, 6, 3, 1, 1}}) {
        CAPTURE(s.H);
        CAPTURE(s.K);
        const Pool2dParams p = Pool2dParams::make(s.N, s.C, s.H, s.W, s.K, s.stride, s.pad);
        const size_t nx = size_t(p.N) * p.C * p.H * p.W, ny = size_t(p.N) * p.C * p.OH * p.OW;
        std::vector<float> x = tie_free(nx, 5), w = tie_free(ny, 6);
        auto loss = [&](const std::vector<float>& v) {
            std::vector<float> y(ny);
            std::vector<int32_t> am(ny);
            cpu::maxpool2d_forward(p, v.data(), y.data(), am.data());
            double l = 0;
            for (size_t i = 0; i < ny; ++i)
                l += double(y[i]) * w[i];
            return l;
        };
        std::vector<float> y(ny), dx(nx);
        std::vector<int32_t> am(ny);
        cpu::maxpool2d_forward(p, x.data(), y.data(), am.data());
        cpu::maxpool2d_backward(p, w.data(), am.data(), dx.data());
        std::vector<double> num(nx);
        for (size_t i = 0; i < nx; ++i) {
            const float keep = x[i];
            x[i] = float(keep + kStep);
            const double up = loss(x);
            x[i] = float(keep - kStep);
            const double down = loss(x);
            x[i] = keep;
            num[i] = (up - down) / (2 * kStep);
        }
        GNET_CHECK_CLOSE(dx, num, kFiniteDiff);
    }
}

TEST_CASE("maxpool2d ResNet stem shape and bad arguments") {
    const Pool2dParams p = Pool2dParams::make(2, 64, 64, 216, 3, 2, 1);
    CHECK(p.OH == 32);
    CHECK(p.OW == 108);
    CHECK_THROWS_AS(Pool2dParams::make(1, 1, 4, 4, 3, 2, 2), Error);  // pad > K/2
    CHECK_THROWS_AS(Pool2dParams::make(1, 1, 4, 4, 0, 2, 0), Error);
    CHECK_THROWS_AS(Pool2dParams::make(1, 1, 2, 2, 5, 1, 1), Error);  // window larger than input
}
