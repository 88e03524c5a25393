// conv2d_bf16's fast CPU backend (what `--precision bf16` runs on a CPU) against its
// specification, the plain-loop twin gnet::cpu::conv2d_bf16_*: ResNet18's conv shapes (reduced
// spatially) and awkward ones, all three passes, both Accum modes, the batch-norm statistics.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d_bf16.h"
#include "kernels/gemm_cpu_fast.h"
#include "tests/bf16_vectors.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::floats;
using gnet::test::random_bf16;
using gnet::test::Tolerance;

namespace {

// Both compute float32 sums of the same exactly represented products, in different orders
// (Winograd F(4x4, 3x3) for 3x3 stride-1 layers: rounding up to ~2e-5 of the output range,
// tests/test_conv2d_fast.cpp), so the float32 results differ by at most kSumRelToMax of the
// largest output; a bf16 output then rounds to the same value or to its neighbour, one ulp
// (<= 2^-7 of the value) away, when the two sums straddle a rounding boundary.
constexpr double kSumRelToMax = 1e-4;
constexpr double kBf16Ulp = 1.0 / 128;

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float e : v)
        m = std::max(m, double(std::fabs(e)));
    return m;
}

void check_bf16(const std::vector<Bf16>& got, const std::vector<Bf16>& ref,
                const std::string& what) {
    const std::vector<float> g = floats(got), r = floats(ref);
    const Tolerance tol{kSumRelToMax * std::max(max_abs(r), 1e-6), kBf16Ulp};
    const gnet::test::Comparison c = gnet::test::compare_arrays(g, r, tol);
    INFO(what << ": " << c.report);
    CHECK(c.ok);
}

void check_f32(const std::vector<float>& got, const std::vector<float>& ref, double scale,
               const std::string& what) {
    const Tolerance tol{kSumRelToMax * std::max(scale, 1e-6), 0.0};
    const gnet::test::Comparison c = gnet::test::compare_arrays(got, ref, tol);
    INFO(what << ": " << c.report);
    CHECK(c.ok);
}

struct Shape {
    const char* name;
    int N, C, H, W, OC, K, stride, pad;
};

void check_shape(const Shape& s) {
    const Conv2dParams p = Conv2dParams::make(s.N, s.C, s.H, s.W, s.OC, s.K, s.K, s.stride, s.pad);
    const std::string name = s.name;
    const auto x = random_bf16(p.x_size(), 1), w = random_bf16(p.w_size(), 2),
               dy = random_bf16(p.y_size(), 3);

    // forward, with and without the statistics
    std::vector<Bf16> y_ref(size_t(p.y_size())), y(size_t(p.y_size()), to_bf16(7.f));
    std::vector<float> sum_ref(size_t(p.OC)), sq_ref(size_t(p.OC)), sum(size_t(p.OC), 7.f),
        sq(size_t(p.OC), 7.f);
    ChannelStats st_ref{sum_ref.data(), sq_ref.data()}, st{sum.data(), sq.data()};
    cpu::conv2d_bf16_forward(p, x.data(), w.data(), y_ref.data(), &st_ref);
    cpu_fast::conv2d_bf16_forward(p, x.data(), w.data(), y.data(), &st);
    check_bf16(y, y_ref, name + " forward");
    // Each of the count = N*OH*OW sums moves by at most kSumRelToMax * max|y| (its square by
    // twice that times max|y|): the bound on the statistics' difference.
    const double ymax = max_abs(floats(y_ref)), count = double(p.N) * p.OH * p.OW;
    check_f32(sum, sum_ref, ymax * count, name + " forward statistics: sum");
    check_f32(sq, sq_ref, 2 * ymax * ymax * count, name + " forward statistics: sum of squares");
    std::vector<Bf16> y2(size_t(p.y_size()), to_bf16(7.f));
    cpu_fast::conv2d_bf16_forward(p, x.data(), w.data(), y2.data(), nullptr);
    CHECK(std::equal(y.begin(), y.end(), y2.begin(),
                     [](Bf16 a, Bf16 b) { return a.bits == b.bits; }));

    // backward_data, from the IHWO copy of the weights
    std::vector<Bf16> wt(size_t(p.w_size()));
    cpu::conv2d_bf16_ihwo(p, w.data(), wt.data());
    std::vector<Bf16> dx_ref(size_t(p.x_size())), dx(size_t(p.x_size()), to_bf16(7.f));
    cpu::conv2d_bf16_backward_data(p, dy.data(), wt.data(), dx_ref.data());
    cpu_fast::conv2d_bf16_backward_data(p, dy.data(), wt.data(), dx.data());
    check_bf16(dx, dx_ref, name + " backward_data");

    // backward_weight: = then +=
    std::vector<float> dw_ref(size_t(p.w_size())), dw(size_t(p.w_size()), 7.f);
    cpu::conv2d_bf16_backward_weight(p, x.data(), dy.data(), dw_ref.data(), Accum::Overwrite);
    cpu_fast::conv2d_bf16_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);
    const double dwmax = max_abs(dw_ref);
    check_f32(dw, dw_ref, dwmax, name + " backward_weight (=)");
    cpu_fast::conv2d_bf16_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Add);
    for (float& v : dw_ref)
        v *= 2.f;
    check_f32(dw, dw_ref, 2 * dwmax, name + " backward_weight (+=)");
}

}  // namespace

TEST_CASE("conv2d_bf16 fast CPU backend matches the bf16 twin on ResNet18's shapes") {
    if (!cpu_fast::available()) {
        MESSAGE("this CPU has no AVX2+FMA: the fast backend is not used here");
        return;
    }
    // ResNet18's layers at a quarter of a 128x431 chunk's height and width (channels, kernels,
    // strides and padding as in the network).
    const Shape shapes[] = {
        {"conv1 7x7/2", 2, 1, 32, 108, 64, 7, 2, 3},
        {"layer1 3x3", 2, 64, 8, 27, 64, 3, 1, 1},
        {"layer2.0.conv1 3x3/2", 2, 64, 8, 27, 128, 3, 2, 1},
        {"layer2.0.downsample 1x1/2", 2, 64, 8, 27, 128, 1, 2, 0},
        {"layer2 3x3", 2, 128, 4, 14, 128, 3, 1, 1},
        {"layer3.0.conv1 3x3/2", 2, 128, 4, 14, 256, 3, 2, 1},
        {"layer3 3x3", 2, 256, 2, 7, 256, 3, 1, 1},
        {"layer4.0.conv1 3x3/2", 2, 256, 2, 7, 512, 3, 2, 1},
        {"layer4.0.downsample 1x1/2", 2, 256, 2, 7, 512, 1, 2, 0},
        {"layer4 3x3", 2, 512, 1, 4, 512, 3, 1, 1},
    };
    for (const Shape& s : shapes) {
        CAPTURE(s.name);
        check_shape(s);
    }
}

TEST_CASE("conv2d_bf16 fast CPU backend matches the bf16 twin on awkward shapes") {
    if (!cpu_fast::available()) return;
    const Shape shapes[] = {
        {"3x3 N1 C1 OC1 1x1 image", 1, 1, 1, 1, 1, 3, 1, 1},
        {"3x3 N1 odd 7x9 C3 OC5", 1, 3, 7, 9, 5, 3, 1, 1},
        {"3x3 N3 C17 OC20 13x5", 3, 17, 13, 5, 20, 3, 1, 1},
        {"3x3/2 N1 C7 OC13 11x10", 1, 7, 11, 10, 13, 3, 2, 1},
        {"3x3 pad 0 N2 C5 OC6 9x9", 2, 5, 9, 9, 6, 3, 1, 0},
        {"1x1/2 N1 C3 OC17 9x9", 1, 3, 9, 9, 17, 1, 2, 0},
        {"5x5/2 pad 2 N2 C4 OC9 10x11", 2, 4, 10, 11, 9, 5, 2, 2},
    };
    for (const Shape& s : shapes) {
        CAPTURE(s.name);
        check_shape(s);
    }
}
