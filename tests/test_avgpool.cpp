// Global average pooling CPU twin: by hand, and the backward against central differences.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/avgpool.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
constexpr Tolerance kFiniteDiff{1e-4, 1e-3};  // linear op: only float rounding in the difference
}

TEST_CASE("avgpool_global by hand") {
    // N = 2, C = 2, HW = 3
    const std::vector<float> x = {1, 2, 3, -4, 0, 10, 0.5f, 0.5f, 2, 7, 8, 9};
    std::vector<float> y(4);
    cpu::avgpool_global_forward(2, 2, 3, x.data(), y.data());
    CHECK(y == std::vector<float>{2.f, 2.f, 1.f, 8.f});
    const std::vector<float> dy = {3, -6, 1.5f, 0};
    std::vector<float> dx(12, 99.f);
    cpu::avgpool_global_backward(2, 2, 3, dy.data(), dx.data());
    CHECK(dx == std::vector<float>{1, 1, 1, -2, -2, -2, 0.5f, 0.5f, 0.5f, 0, 0, 0});
}

TEST_CASE("avgpool_global backward matches central differences") {
    const int N = 2, C = 3, HW = 7;
    std::mt19937 rng(3);
    std::normal_distribution<float> d;
    std::vector<float> x(N * C * HW), w(N * C);
    for (float& v : x)
        v = d(rng);
    for (float& v : w)
        v = d(rng);
    auto loss = [&](const std::vector<float>& v) {
        std::vector<float> y(N * C);
        cpu::avgpool_global_forward(N, C, HW, v.data(), y.data());
        double l = 0;
        for (int i = 0; i < N * C; ++i)
            l += double(y[i]) * w[i];
        return l;
    };
    std::vector<float> dx(x.size());
    cpu::avgpool_global_backward(N, C, HW, w.data(), dx.data());
    std::vector<double> num(x.size());
    const double h = 1e-2;
    for (size_t i = 0; i < x.size(); ++i) {
        const float keep = x[i];
        x[i] = float(keep + h);
        const double up = loss(x);
        x[i] = float(keep - h);
        const double down = loss(x);
        x[i] = keep;
        num[i] = (up - down) / (2 * h);
    }
    GNET_CHECK_CLOSE(dx, num, kFiniteDiff);
}
