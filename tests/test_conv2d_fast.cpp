// conv2d fast CPU backend (Winograd F(4x4,3x3) and packed GEMM) against the reference twin
// gnet::cpu::conv2d_* over every ResNet18 conv shape and awkward ones (N = 1, odd sizes, C and
// OC not multiples of 8 or 16, stride 2, other kernel sizes), all three passes, both Accum
// modes, and the fused inference epilogue (bias, residual, ReLU).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/gemm_cpu_fast.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// Errors are measured against the largest magnitude of the reference output, because Winograd's
// rounding error scales with the size of the sums, not with each (possibly tiny) output value.
// Packed GEMM: only float summation order differs from the reference's sgemm (measured worst
// case over these shapes: 8e-7 of the output range).
constexpr double kGemmRelToMax = 5e-6;
// Winograd F(4x4, 3x3): the transforms' constants (up to 8 and 1/24) amplify rounding; measured
// worst case 1.8e-5 of the output range (layer4 forward / backward-data; backward-weight 4e-6).
constexpr double kWinogradRelToMax = 1e-4;

std::vector<float> random_vector(int64_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v)
        e = u(rng);
    return v;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float e : v)
        m = std::max(m, double(std::fabs(e)));
    return m;
}

void check_against(const std::vector<float>& got, const std::vector<float>& ref, bool winograd,
                   const std::string& what) {
    const double scale = std::max(max_abs(ref), 1e-6);
    const Tolerance tol{(winograd ? kWinogradRelToMax : kGemmRelToMax) * scale, 0.0};
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
    const bool wino = s.K == 3 && s.stride == 1 && s.pad == 1;
    const std::string name = s.name;
    const auto x = random_vector(p.x_size(), 1), w = random_vector(p.w_size(), 2),
               dy = random_vector(p.y_size(), 3);

    std::vector<float> y_ref(size_t(p.y_size())), y(size_t(p.y_size()), 7.f);
    cpu::conv2d_forward(p, x.data(), w.data(), y_ref.data());
    cpu_fast::conv2d_forward(p, x.data(), w.data(), y.data());
    check_against(y, y_ref, wino, name + " forward");

    std::vector<float> dx_ref(size_t(p.x_size())), dx(size_t(p.x_size()), 7.f);
    cpu::conv2d_backward_data(p, dy.data(), w.data(), dx_ref.data());
    cpu_fast::conv2d_backward_data(p, dy.data(), w.data(), dx.data());
    check_against(dx, dx_ref, wino, name + " backward_data");

    std::vector<float> dw_ref(size_t(p.w_size())), dw(size_t(p.w_size()), 7.f);
    cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw_ref.data(), Accum::Overwrite);
    cpu_fast::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);
    check_against(dw, dw_ref, wino, name + " backward_weight (=)");
    // Add: dw += the same gradient again.
    cpu_fast::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Add);
    for (float& v : dw_ref)
        v *= 2.f;
    check_against(dw, dw_ref, wino, name + " backward_weight (+=)");

    // Fused inference epilogue: relu(conv + bias + residual) and conv + bias.
    const auto bias = random_vector(p.OC, 4), res = random_vector(p.y_size(), 5);
    std::vector<float> want(y_ref), got(size_t(p.y_size()), 7.f);
    const int64_t plane = int64_t(p.OH) * p.OW;
    for (int64_t i = 0; i < p.y_size(); ++i) {
        const float v = y_ref[size_t(i)] + bias[size_t((i / plane) % p.OC)] + res[size_t(i)];
        want[size_t(i)] = v < 0.f ? 0.f : v;
    }
    cpu_fast::conv2d_forward_fused(p, x.data(), w.data(), bias.data(), res.data(), true,
                                   got.data());
    check_against(got, want, wino, name + " fused bias+residual+relu");
    for (int64_t i = 0; i < p.y_size(); ++i)
        want[size_t(i)] = y_ref[size_t(i)] + bias[size_t((i / plane) % p.OC)];
    cpu_fast::conv2d_forward_fused(p, x.data(), w.data(), bias.data(), nullptr, false, got.data());
    check_against(got, want, wino, name + " fused bias");
}

}  // namespace

TEST_CASE("conv2d fast backend matches the reference on ResNet18's shapes") {
    if (!cpu_fast::available()) {
        MESSAGE("this CPU has no AVX2+FMA: the fast backend is not used here");
        return;
    }
    const Shape shapes[] = {
        {"conv1 7x7/2", 2, 1, 128, 431, 64, 7, 2, 3},
        {"layer1 3x3", 2, 64, 32, 108, 64, 3, 1, 1},
        {"layer2.0.conv1 3x3/2", 2, 64, 32, 108, 128, 3, 2, 1},
        {"layer2.0.downsample 1x1/2", 2, 64, 32, 108, 128, 1, 2, 0},
        {"layer2 3x3", 2, 128, 16, 54, 128, 3, 1, 1},
        {"layer3.0.conv1 3x3/2", 2, 128, 16, 54, 256, 3, 2, 1},
        {"layer3 3x3", 2, 256, 8, 27, 256, 3, 1, 1},
        {"layer4.0.conv1 3x3/2", 2, 256, 8, 27, 512, 3, 2, 1},
        {"layer4.0.downsample 1x1/2", 2, 256, 8, 27, 512, 1, 2, 0},
        {"layer4 3x3", 2, 512, 4, 14, 512, 3, 1, 1},
    };
    for (const Shape& s : shapes) {
        CAPTURE(s.name);
        check_shape(s);
    }
}

TEST_CASE("conv2d fast backend matches the reference on awkward shapes") {
    if (!cpu_fast::available()) return;
    const Shape shapes[] = {
        {"3x3 N1 C1 OC1 1x1 image", 1, 1, 1, 1, 1, 3, 1, 1},
        {"3x3 N1 odd 7x9 C3 OC5", 1, 3, 7, 9, 5, 3, 1, 1},
        {"3x3 N3 C17 OC20 13x5", 3, 17, 13, 5, 20, 3, 1, 1},
        {"3x3 N2 C9 OC33 6x6 (exact tiles)", 2, 9, 8, 8, 33, 3, 1, 1},
        {"3x3/2 N1 C7 OC13 11x10", 1, 7, 11, 10, 13, 3, 2, 1},
        {"3x3 pad 0 N2 C5 OC6 9x9", 2, 5, 9, 9, 6, 3, 1, 0},
        {"1x1/1 N2 C24 OC10 5x7", 2, 24, 5, 7, 10, 1, 1, 0},
        {"1x1/2 N1 C3 OC17 9x9", 1, 3, 9, 9, 17, 1, 2, 0},
        {"5x5/1 pad 2 N2 C4 OC7 12x11", 2, 4, 12, 11, 7, 5, 1, 2},
        {"7x7/2 pad 3 N1 C2 OC9 17x23", 1, 2, 17, 23, 9, 7, 2, 3},
        // Wide enough for the three-phase Winograd path with several output-panel groups (the
        // last one partial) and an OC that is not a multiple of 16.
        {"3x3 N1 C512 OC600 5x7 (panel groups)", 1, 512, 5, 7, 600, 3, 1, 1},
    };
    for (const Shape& s : shapes) {
        CAPTURE(s.name);
        check_shape(s);
    }
}
