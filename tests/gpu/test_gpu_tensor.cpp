// Tensor host<->device copies, arenas on the GPU, pinned buffers.
#include <doctest/doctest.h>

#include "nn/arena.h"
#include "nn/tensor.h"

using namespace gnet;

TEST_CASE("Tensor host -> device -> host round trip") {
    std::vector<float> v(1000);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = float(i) - 500.f;
    Tensor d = Tensor::from_vector({10, 100}, v, Device::CUDA);
    CHECK(d.device() == Device::CUDA);
    CHECK(d.to_host() == v);
    Tensor d2 = d.clone();
    Tensor h = d2.to(Device::CPU);
    CHECK(h.device() == Device::CPU);
    CHECK(h.to_host() == v);
    Tensor z = Tensor::zeros({1000}, Device::CUDA);
    CHECK(z.to_host() == std::vector<float>(1000, 0.f));
    z.copy_from(h);
    CHECK(z.to_host() == v);
}

TEST_CASE("Arena on the GPU hands out aligned, zeroed views") {
    Arena a;
    auto s0 = a.reserve({5});
    auto s1 = a.reserve({3, 7});
    a.allocate(Device::CUDA);
    Tensor t1 = a.tensor(s1);
    CHECK(reinterpret_cast<uintptr_t>(t1.data()) % 256 == 0);
    CHECK(t1.to_host() == std::vector<float>(21, 0.f));
    t1.copy_from_host(std::vector<float>(21, 2.f).data());
    CHECK(a.tensor(s0).to_host() == std::vector<float>(5, 0.f));
    CHECK(a.tensor(s1).to_host() == std::vector<float>(21, 2.f));
}

TEST_CASE("PinnedBuffer and an absurd allocation") {
    PinnedBuffer p(1 << 20);
    CHECK(p.data() != nullptr);
    CHECK_THROWS_WITH(DeviceBuffer(size_t(1) << 50), doctest::Contains("out of memory"));
}
