// Sigmoid CPU twin: known values, symmetry, and no overflow at large |x|.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/sigmoid.h"

using namespace gnet;

TEST_CASE("sigmoid known values and stability") {
    const std::vector<float> x = {0.f, 2.f, -2.f, 100.f, -100.f, 1000.f, -1000.f};
    std::vector<float> y(x.size());
    cpu::sigmoid_forward(int64_t(x.size()), x.data(), y.data());
    CHECK(y[0] == 0.5f);
    CHECK(y[1] == doctest::Approx(1.0 / (1.0 + std::exp(-2.0))).epsilon(1e-7));
    CHECK(y[1] + y[2] == doctest::Approx(1.0).epsilon(1e-7));
    CHECK(y[3] == 1.f);
    CHECK(y[4] == doctest::Approx(std::exp(-100.0)).epsilon(1e-6));
    CHECK(y[5] == 1.f);
    CHECK(y[6] == 0.f);
    for (float v : y)
        CHECK(std::isfinite(v));
}
