// Elementwise add CPU twin, including in place.
#include <doctest/doctest.h>

#include <vector>

#include "kernels/add.h"

using namespace gnet;

TEST_CASE("add by hand and in place") {
    std::vector<float> a = {1, 2, 3, -4, 0.5f}, b = {10, 20, 30, 4, 0.25f}, y(5);
    cpu::add_forward(5, a.data(), b.data(), y.data());
    CHECK(y == std::vector<float>{11, 22, 33, 0, 0.75f});
    cpu::add_forward(5, a.data(), b.data(), a.data());
    CHECK(a == y);
}
