// bf16 test data shared by the CPU and GPU bf16 tests: random operands and their float values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/bf16.h"

namespace gnet::test {

// `count` bf16 values, uniform in [-1, 1] before rounding, a function of `seed`.
inline std::vector<Bf16> random_bf16(int64_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<Bf16> v(static_cast<size_t>(count));
    for (Bf16& e : v)
        e = to_bf16(u(rng));
    return v;
}

// The float32 values bf16 values carry (exact).
inline std::vector<float> floats(const std::vector<Bf16>& v) {
    std::vector<float> f(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        f[i] = to_float(v[i]);
    return f;
}

}  // namespace gnet::test
