// ReLU CPU twin: by hand, and the backward's mask comes from the output (y > 0).
#include <doctest/doctest.h>

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
