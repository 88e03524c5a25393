// ReLU CPU twin: by hand, and the backward's mask comes from the output (y > 0).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/relu.h"

using namespace gnet;

TEST_CASE("relu forward and backward by hand") {
    const std::vector<float> x = {-2.f, -0.f, 0.f, 1e-30f, 3.5f, -1e-30f};
    std::vector<float> y(6), dx(6, 7.f);
    cpu::relu_forward(6, x.data(), y.data());
    CHECK(y == std::vector<float>{0.f, 0.f, 0.f, 1e-30f, 3.5f, 0.f});
    const std::vector<float> dy = {1, 2, 3, 4, 5, 6};
    cpu::relu_backward(6, y.data(), dy.data(), dx.data());
    CHECK(dx == std::vector<float>{0, 0, 0, 4, 5, 0});  // at exactly 0 the gradient is 0
}

TEST_CASE("relu and the fused BN+ReLU let NaN through, as PyTorch does") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> x = {nan, -1.f, 2.f}, y(3);
    cpu::relu_forward(3, x.data(), y.data());
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 0.f);
    CHECK(y[2] == 2.f);
}
