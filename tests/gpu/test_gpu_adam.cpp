// Adam / AdamW GPU twin against the CPU twin over three steps: an arena the size of ResNet18
// (11.2M parameters, float4 path plus a ragged tail) and a misaligned view (scalar path).
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/adam.h"
#include "nn/tensor.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
// Same float operations; the GPU may fuse multiply-adds, so allow a few ulps.
constexpr Tolerance kAdam{1e-7, 1e-5};
}  // namespace

TEST_CASE("gpu adam_step matches the CPU twin (Adam and AdamW, aligned and misaligned)") {
    const int64_t n = 11'200'003;
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    std::vector<float> w0(n);
    for (float& v : w0)
        v = d(rng);
    for (AdamMode mode : {AdamMode::Adam, AdamMode::AdamW}) {
        for (int64_t offset : {int64_t(0), int64_t(1)}) {
            CAPTURE(mode == AdamMode::AdamW);
            CAPTURE(offset);
            const int64_t len = offset ? 1'000'001 : n;
            AdamParams p;
            p.lr = 1e-3f;
            p.weight_decay = 0.01f;
            p.mode = mode;
            std::vector<float> w(w0.begin(), w0.begin() + len), m(len, 0.f), v(len, 0.f);
            Tensor gw = Tensor::zeros({len + offset}, Device::CUDA);
            Tensor gm = Tensor::zeros({len + offset}, Device::CUDA);
            Tensor gv = Tensor::zeros({len + offset}, Device::CUDA);
            Tensor gg = Tensor::zeros({len + offset}, Device::CUDA);
            std::vector<float> padded(len + offset, 0.f);
            std::copy(w.begin(), w.end(), padded.begin() + offset);
            gw.copy_from_host(padded.data());
            for (int t = 1; t <= 3; ++t) {
                std::vector<float> g(len);
                for (float& x : g)
                    x = d(rng);
                p.step = t;
                cpu::adam_step(p, len, w.data(), g.data(), m.data(), v.data());
                std::copy(g.begin(), g.end(), padded.begin() + offset);
                gg.copy_from_host(padded.data());
                gpu::adam_step(p, len, gw.data() + offset, gg.data() + offset, gm.data() + offset,
                               gv.data() + offset, nullptr);
            }
            const std::vector<float> hw = gw.to_host(), hm = gm.to_host(), hv = gv.to_host();
            GNET_CHECK_CLOSE_N(hw.data() + offset, w.data(), size_t(len), kAdam);
            GNET_CHECK_CLOSE_N(hm.data() + offset, m.data(), size_t(len), kAdam);
            GNET_CHECK_CLOSE_N(hv.data() + offset, v.data(), size_t(len), kAdam);
        }
    }
}
