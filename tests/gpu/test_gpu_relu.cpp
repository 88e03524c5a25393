// ReLU, residual add and sigmoid GPU twins against the CPU twins, aligned (float4) and
// misaligned (scalar) pointers, with a ragged tail.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/add.h"
#include "kernels/relu.h"
#include "kernels/sigmoid.h"
#include "nn/tensor.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
constexpr Tolerance kSigmoid{1e-7, 1e-6};  // expf within 2 ulp vs double exp
}

TEST_CASE("gpu relu, add and sigmoid match the CPU twins") {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.f, 5.f);
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(1'000'003)}) {
        for (int64_t off : {int64_t(0), int64_t(1)}) {
            CAPTURE(n);
            CAPTURE(off);
            std::vector<float> a(n + off), b(n + off), dy(n + off);
            for (float& v : a)
                v = d(rng);
            for (float& v : b)
                v = d(rng);
            for (float& v : dy)
                v = d(rng);
            a[off] = 0.f;
            std::vector<float> y(n), dx(n), s(n), sg(n);
            cpu::relu_forward(n, a.data() + off, y.data());
            cpu::relu_backward(n, y.data(), dy.data() + off, dx.data());
            cpu::add_forward(n, a.data() + off, b.data() + off, s.data());
            cpu::sigmoid_forward(n, a.data() + off, sg.data());

            Tensor ga = Tensor::from_vector({n + off}, a, Device::CUDA);
            Tensor gb = Tensor::from_vector({n + off}, b, Device::CUDA);
            Tensor gdy = Tensor::from_vector({n + off}, dy, Device::CUDA);
            Tensor gy = Tensor::zeros({n + off}, Device::CUDA),
                   gdx = Tensor::zeros({n + off}, Device::CUDA);
            Tensor gs = Tensor::zeros({n + off}, Device::CUDA),
                   gsg = Tensor::zeros({n + off}, Device::CUDA);
            gpu::relu_forward(n, ga.data() + off, gy.data() + off, nullptr);
            gpu::relu_backward(n, gy.data() + off, gdy.data() + off, gdx.data() + off, nullptr);
            gpu::add_forward(n, ga.data() + off, gb.data() + off, gs.data() + off, nullptr);
            gpu::sigmoid_forward(n, ga.data() + off, gsg.data() + off, nullptr);
            auto tail = [&](const Tensor& t) {
                std::vector<float> h = t.to_host();
                return std::vector<float>(h.begin() + off, h.end());
            };
            CHECK(tail(gy) == y);
            CHECK(tail(gdx) == dx);
            CHECK(tail(gs) == s);
            GNET_CHECK_CLOSE(tail(gsg), sg, kSigmoid);
        }
    }
}
