// Max pooling GPU twin against the CPU twin: the ResNet18 stem pool (64 x 216 -> 32 x 108) and
// awkward shapes (odd sizes, N = 1, C = 17/33, stride 1), with and without ties. The outputs,
// argmax and the gathered gradients are bit-identical to the CPU's (same comparisons, same
// additions in the same order).
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/maxpool2d.h"
#include "nn/buffer.h"
#include "nn/tensor.h"

using namespace gnet;

namespace {

struct PoolShape {
    int N, C, H, W, K, stride, pad;
};

void check_shape(PoolShape s, bool ties, unsigned seed) {
    CAPTURE(s.H);
    CAPTURE(s.W);
    CAPTURE(s.C);
    CAPTURE(ties);
    const Pool2dParams p = Pool2dParams::make(s.N, s.C, s.H, s.W, s.K, s.stride, s.pad);
    const size_t nx = size_t(p.N) * p.C * p.H * p.W, ny = size_t(p.N) * p.C * p.OH * p.OW;
    std::mt19937 rng(seed);
    std::vector<float> x(nx), dy(ny);
    std::normal_distribution<float> d;
    std::uniform_int_distribution<int> small(-3, 3);
    for (float& v : x)
        v = ties ? float(small(rng)) : d(rng);
    for (float& v : dy)
        v = d(rng);

    std::vector<float> y(ny), dx(nx);
    std::vector<int32_t> am(ny);
    cpu::maxpool2d_forward(p, x.data(), y.data(), am.data());
    cpu::maxpool2d_backward(p, dy.data(), am.data(), dx.data());

    Tensor gx = Tensor::from_vector({int64_t(nx)}, x, Device::CUDA);
    Tensor gdy = Tensor::from_vector({int64_t(ny)}, dy, Device::CUDA);
    Tensor gy = Tensor::empty({int64_t(ny)}, Device::CUDA);
    Tensor gdx = Tensor::empty({int64_t(nx)}, Device::CUDA);
    DeviceBuffer gam(ny * sizeof(int32_t));
    gpu::maxpool2d_forward(p, gx.data(), gy.data(), gam.as<int32_t>(), nullptr);
    gpu::maxpool2d_backward(p, gdy.data(), gam.as<int32_t>(), gdx.data(), nullptr);
    std::vector<int32_t> am_gpu(ny);
    GNET_CUDA_CHECK(
        cudaMemcpy(am_gpu.data(), gam.data(), ny * sizeof(int32_t), cudaMemcpyDeviceToHost));
    CHECK(gy.to_host() == y);
    CHECK(am_gpu == am);
    CHECK(gdx.to_host() == dx);
}

}  // namespace

TEST_CASE("gpu maxpool2d equals the CPU twin (ResNet18 stem pool and awkward shapes)") {
    const std::vector<PoolShape> shapes = {
        {2, 64, 64, 216, 3, 2, 1},  // ResNet18: 64 x 216 -> 32 x 108
        {1, 3, 7, 9, 3, 2, 1},     {2, 17, 5, 6, 2, 2, 0}, {1, 1, 9, 7, 3, 1, 1},
        {3, 33, 11, 13, 3, 2, 1},  {1, 2, 1, 1, 1, 1, 0},  {2, 3, 10, 10, 5, 3, 2},
    };
    unsigned seed = 1;
    for (PoolShape s : shapes)
        for (bool ties : {false, true})
            check_shape(s, ties, seed++);
}
