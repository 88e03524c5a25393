// Tensor, Arena and the CPU side of buffers; device copies are covered in tests/gpu/.
#include <doctest/doctest.h>

#include "kernels/error.h"
#include "nn/arena.h"
#include "nn/tensor.h"

using namespace gnet;

TEST_CASE("Tensor shapes, zeros and host round trip") {
    Tensor t = Tensor::zeros({2, 1, 3, 4}, Device::CPU);
    CHECK(t.numel() == 24);
    CHECK(t.rank() == 4);
    CHECK(t.dim(-1) == 4);
    CHECK(t.dim(1) == 1);
    CHECK(t.bytes() == 96);
    CHECK(shape_string(t.shape()) == "[2, 1, 3, 4]");
    for (float v : t.to_host())
        CHECK(v == 0.0f);
    CHECK_THROWS_AS(t.dim(4), Error);

    std::vector<float> v(24);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = float(i);
    Tensor u = Tensor::from_vector({2, 12}, v, Device::CPU);
    CHECK(u.to_host() == v);
    CHECK_THROWS_AS(Tensor::from_vector({5}, v, Device::CPU), Error);
}

TEST_CASE("Tensor clone is deep, views and reshapes share data, moves keep the pointer") {
    std::vector<float> v = {1, 2, 3, 4, 5, 6};
    Tensor a = Tensor::from_vector({2, 3}, v, Device::CPU);
    Tensor b = a.clone();
    b.data()[0] = 100;
    CHECK(a.data()[0] == 1);

    Tensor r = a.reshaped({3, 2});
    CHECK(r.is_view());
    r.data()[5] = -6;
    CHECK(a.data()[5] == -6);
    CHECK_THROWS_AS(a.reshaped({4, 2}), Error);

    float* p = a.data();
    Tensor moved = std::move(a);
    CHECK(moved.data() == p);
    CHECK(moved.to_host()[5] == -6);
}

TEST_CASE("Tensor copy_from checks element counts") {
    Tensor a = Tensor::zeros({6}, Device::CPU);
    Tensor b = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6}, Device::CPU);
    a.copy_from(b);
    CHECK(a.to_host() == b.to_host());
    Tensor c = Tensor::zeros({5}, Device::CPU);
    CHECK_THROWS_AS(c.copy_from(b), Error);
    a.fill_zero();
    CHECK(a.to_host() == std::vector<float>(6, 0.0f));
}

TEST_CASE("Arena: planned once, 256-byte aligned slots, views into one block") {
    Arena arena;
    Arena::Slot s0 = arena.reserve({3});
    Arena::Slot s1 = arena.reserve({2, 65});
    Arena::Slot s2 = arena.reserve({1});
    CHECK_THROWS_AS(arena.tensor(s0), Error);
    arena.allocate(Device::CPU);
    CHECK_THROWS_AS(arena.reserve({1}), Error);
    CHECK_THROWS_AS(arena.allocate(Device::CPU), Error);
    CHECK(arena.offset(s0) == 0);
    CHECK(arena.offset(s1) == 64);
    CHECK(arena.offset(s2) == 64 + 192);
    CHECK(arena.numel() == 64 + 192 + 64);
    Tensor t1 = arena.tensor(s1);
    CHECK(t1.shape() == Shape{2, 65});
    CHECK(t1.data() == arena.data() + 64);
    CHECK(reinterpret_cast<uintptr_t>(t1.data()) % 256 == 0);
    t1.data()[0] = 5;
    CHECK(arena.tensor(s1).data()[0] == 5);
    arena.zero();
    CHECK(arena.tensor(s1).data()[0] == 0);
    CHECK_THROWS_AS(arena.tensor(7), Error);
}

TEST_CASE("GPU memory in a build or machine without a GPU is an Error, not a crash") {
    if (probe_gpus().usable) return;  // covered by tests/gpu on a GPU machine
    CHECK_THROWS_AS(Tensor::zeros({4}, Device::CUDA), Error);
    CHECK_THROWS_AS(DeviceBuffer(16), Error);
}
