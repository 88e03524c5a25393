// pool_bf16 (channels-last max pool, global average pool, the float->bf16 input copy) against
// the CPU twin. Max and copies are exact; the sums run in the same order as the twin's, so every
// result must equal it bit for bit.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/pool_bf16.h"
#include "nn/buffer.h"

using namespace gnet;

namespace {

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    GNET_CUDA_CHECK(cudaMemcpy(b.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return b;
}

template <class T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
    std::vector<T> v(n);
    GNET_CUDA_CHECK(cudaMemcpy(v.data(), b.data(), n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

DeviceBuffer nan_filled(size_t bytes) {
    DeviceBuffer b(bytes);
    GNET_CUDA_CHECK(cudaMemset(b.data(), 0xff, bytes));
    return b;
}

std::vector<Bf16> random_bf16(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<Bf16> v(n);
    // Coarse values: ties inside windows happen, so the tie rule is exercised.
    for (Bf16& e : v)
        e = to_bf16(std::round(u(rng) * 8.f) / 8.f);
    return v;
}

bool same_bits(const std::vector<Bf16>& a, const std::vector<Bf16>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].bits != b[i].bits) return false;
    return true;
}

}  // namespace

TEST_CASE("maxpool2d_bf16 GPU equals the CPU twin, forward and backward") {
    for (const Pool2dParams& p :
         {Pool2dParams::make(2, 64, 16, 27, 3, 2, 1), Pool2dParams::make(1, 5, 7, 6, 3, 2, 1),
          Pool2dParams::make(1, 3, 5, 5, 2, 2, 0)}) {
        CAPTURE(p.C);
        const size_t nx = size_t(p.N) * p.H * p.W * p.C, ny = size_t(p.N) * p.OH * p.OW * p.C;
        const std::vector<Bf16> x = random_bf16(nx, 1), dy = random_bf16(ny, 2);
        std::vector<Bf16> y(ny), dx(nx);
        std::vector<int32_t> argmax(ny);
        cpu::maxpool2d_bf16_forward(p, x.data(), y.data(), argmax.data());
        cpu::maxpool2d_bf16_backward(p, dy.data(), argmax.data(), dx.data());
        DeviceBuffer d_x = upload(x), d_dy = upload(dy), d_y = nan_filled(ny * 2),
                     d_arg = nan_filled(ny * 4), d_dx = nan_filled(nx * 2);
        gpu::maxpool2d_bf16_forward(p, d_x.as<Bf16>(), d_y.as<Bf16>(), d_arg.as<int32_t>(),
                                    nullptr);
        gpu::maxpool2d_bf16_backward(p, d_dy.as<Bf16>(), d_arg.as<int32_t>(), d_dx.as<Bf16>(),
                                     nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        CHECK(same_bits(download<Bf16>(d_y, ny), y));
        CHECK(download<int32_t>(d_arg, ny) == argmax);
        CHECK(same_bits(download<Bf16>(d_dx, nx), dx));
    }
}

TEST_CASE("avgpool_bf16, to_bf16_copy and add_bf16 GPU equal the CPU twin") {
    const int N = 3, HW = 4 * 14, C = 512;
    const std::vector<Bf16> x = random_bf16(size_t(N) * HW * C, 3);
    std::vector<float> y(size_t(N) * C), dyf(size_t(N) * C);
    for (size_t i = 0; i < dyf.size(); ++i)
        dyf[i] = std::sin(float(i));
    std::vector<Bf16> dx(x.size());
    cpu::avgpool_bf16_forward(N, HW, C, x.data(), y.data());
    cpu::avgpool_bf16_backward(N, HW, C, dyf.data(), dx.data());
    DeviceBuffer d_x = upload(x), d_dy = upload(dyf), d_y = nan_filled(y.size() * 4),
                 d_dx = nan_filled(dx.size() * 2);
    gpu::avgpool_bf16_forward(N, HW, C, d_x.as<Bf16>(), d_y.as<float>(), nullptr);
    gpu::avgpool_bf16_backward(N, HW, C, d_dy.as<float>(), d_dx.as<Bf16>(), nullptr);

    std::vector<float> spec(1000);
    for (size_t i = 0; i < spec.size(); ++i)
        spec[i] = std::cos(float(i) * 0.37f);
    std::vector<Bf16> spec16(spec.size());
    cpu::to_bf16_copy(int64_t(spec.size()), spec.data(), spec16.data());
    DeviceBuffer d_spec = upload(spec), d_spec16 = nan_filled(spec.size() * 2);
    gpu::to_bf16_copy(int64_t(spec.size()), d_spec.as<float>(), d_spec16.as<Bf16>(), nullptr);
    GNET_CUDA_CHECK(cudaDeviceSynchronize());
    CHECK(download<float>(d_y, y.size()) == y);
    CHECK(same_bits(download<Bf16>(d_dx, dx.size()), dx));
    CHECK(same_bits(download<Bf16>(d_spec16, spec.size()), spec16));

    const std::vector<Bf16> a = random_bf16(999, 4), b = random_bf16(999, 5);
    std::vector<Bf16> sum(999);
    cpu::add_bf16(999, a.data(), b.data(), sum.data());
    DeviceBuffer d_a = upload(a), d_b = upload(b), d_sum = nan_filled(999 * 2);
    gpu::add_bf16(999, d_a.as<Bf16>(), d_b.as<Bf16>(), d_sum.as<Bf16>(), nullptr);
    GNET_CUDA_CHECK(cudaDeviceSynchronize());
    CHECK(same_bits(download<Bf16>(d_sum, 999), sum));
}
