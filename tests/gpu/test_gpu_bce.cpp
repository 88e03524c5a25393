// BCE-with-logits GPU twin against the CPU twin (with/without pos_weight, dlogits skipped,
// shapes from 1 x 1 to more elements than the block has threads); reruns are bit-identical.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "kernels/bce.h"
#include "kernels/cuda_check.h"
#include "nn/tensor.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
constexpr Tolerance kLoss{1e-7, 1e-6};  // double maths on both sides
constexpr Tolerance kGrad{1e-9, 1e-6};
}  // namespace

TEST_CASE("gpu bce_logits_forward_backward matches the CPU twin and is deterministic") {
    struct S {
        int N, G;
    };
    unsigned seed = 1;
    for (S s : {S{1, 1}, S{3, 17}, S{32, 50}, S{100, 1000}}) {
        CAPTURE(s.N);
        CAPTURE(s.G);
        std::mt19937 rng(seed++);
        std::normal_distribution<float> d(0.f, 4.f);
        std::uniform_real_distribution<float> u(0.f, 1.f);
        const size_t n = size_t(s.N) * s.G;
        std::vector<float> z(n), t(n), pw(s.G);
        for (float& v : z)
            v = d(rng);
        for (float& v : t)
            v = u(rng) < 0.3f ? 1.f : 0.f;
        for (float& v : pw)
            v = 0.5f + 4.f * u(rng);
        Tensor gz = Tensor::from_vector({int64_t(n)}, z, Device::CUDA);
        Tensor gt = Tensor::from_vector({int64_t(n)}, t, Device::CUDA);
        Tensor gpw = Tensor::from_vector({s.G}, pw, Device::CUDA);
        for (bool with_pw : {false, true}) {
            CAPTURE(with_pw);
            float loss;
            std::vector<float> dz(n);
            cpu::bce_logits_forward_backward(s.N, s.G, z.data(), t.data(),
                                             with_pw ? pw.data() : nullptr, &loss, dz.data());
            Tensor gloss = Tensor::empty({1}, Device::CUDA),
                   gdz = Tensor::empty({int64_t(n)}, Device::CUDA);
            gpu::bce_logits_forward_backward(s.N, s.G, gz.data(), gt.data(),
                                             with_pw ? gpw.data() : nullptr, gloss.data(),
                                             gdz.data(), nullptr);
            const std::vector<float> l1 = gloss.to_host();
            GNET_CHECK_CLOSE_N(l1.data(), &loss, 1, kLoss);
            GNET_CHECK_CLOSE(gdz.to_host(), dz, kGrad);
            // dlogits skipped; and the very same loss under every schedule.
            const auto losses = gnet::test::results_under_varied_schedules([&] {
                gpu::bce_logits_forward_backward(s.N, s.G, gz.data(), gt.data(),
                                                 with_pw ? gpw.data() : nullptr, gloss.data(),
                                                 nullptr, nullptr);
                return gloss.to_host();
            });
            CHECK(gnet::test::all_equal(losses));
            CHECK(losses.front() == l1);
        }
    }
}
