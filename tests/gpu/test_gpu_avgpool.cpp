// Global average pooling GPU twin against the CPU twin (ResNet18's 512 x 4 x 14 at batch 2 and
// awkward shapes).
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/avgpool.h"
#include "nn/tensor.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
constexpr Tolerance kForward{1e-6, 1e-5};  // float warp sum vs double
}

TEST_CASE("gpu avgpool_global matches the CPU twin") {
    struct S {
        int N, C, HW;
    };
    unsigned seed = 1;
    for (S s : {S{2, 512, 56}, S{1, 3, 7}, S{3, 17, 1}, S{2, 33, 1000}, S{32, 512, 56}}) {
        CAPTURE(s.C);
        CAPTURE(s.HW);
        std::mt19937 rng(seed++);
        std::normal_distribution<float> d(0.5f, 1.f);
        const size_t nx = size_t(s.N) * s.C * s.HW, ny = size_t(s.N) * s.C;
        std::vector<float> x(nx), dy(ny);
        for (float& v : x)
            v = d(rng);
        for (float& v : dy)
            v = d(rng);
        std::vector<float> y(ny), dx(nx);
        cpu::avgpool_global_forward(s.N, s.C, s.HW, x.data(), y.data());
        cpu::avgpool_global_backward(s.N, s.C, s.HW, dy.data(), dx.data());
        Tensor gx = Tensor::from_vector({int64_t(nx)}, x, Device::CUDA);
        Tensor gdy = Tensor::from_vector({int64_t(ny)}, dy, Device::CUDA);
        Tensor gy = Tensor::empty({int64_t(ny)}, Device::CUDA);
        Tensor gdx = Tensor::empty({int64_t(nx)}, Device::CUDA);
        gpu::avgpool_global_forward(s.N, s.C, s.HW, gx.data(), gy.data(), nullptr);
        gpu::avgpool_global_backward(s.N, s.C, s.HW, gdy.data(), gdx.data(), nullptr);
        GNET_CHECK_CLOSE(gy.to_host(), y, kForward);
        CHECK(gdx.to_host() == dx);  // the same single division
    }
}
