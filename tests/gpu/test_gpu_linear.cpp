// linear GPU twin against the CPU twin: forward with and without bias, backward with dx/db
// present or skipped, dw/db accumulate; deterministic db.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/linear.h"
#include "nn/buffer.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr Tolerance kGpuVsCpu{2e-4, 2e-4};  // K <= 512 float terms, different order

std::vector<float> random_vector(size_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(count);
    for (float& e : v)
        e = u(rng);
    return v;
}

struct Dev {
    DeviceBuffer buf;
    size_t count = 0;
    explicit Dev(const std::vector<float>& v) : buf(v.size() * sizeof(float)), count(v.size()) {
        GNET_CUDA_CHECK(
            cudaMemcpy(buf.data(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    float* ptr() const { return buf.as<float>(); }
    std::vector<float> host() const {
        std::vector<float> v(count);
        GNET_CUDA_CHECK(
            cudaMemcpy(v.data(), buf.data(), count * sizeof(float), cudaMemcpyDeviceToHost));
        return v;
    }
};

}  // namespace

TEST_CASE("linear GPU matches the CPU twin") {
    // The classifier head (batch 32 and 128, 512 features, 10 and 50 genres) and odd sizes.
    for (LinearParams p :
         {LinearParams{32, 512, 10}, LinearParams{128, 512, 50}, LinearParams{1, 7, 3},
          LinearParams{33, 17, 64}, LinearParams{5, 512, 1}}) {
        CAPTURE(p.N);
        CAPTURE(p.IN);
        CAPTURE(p.OUT);
        const size_t nx = size_t(p.N) * p.IN, nw = size_t(p.OUT) * p.IN, ny = size_t(p.N) * p.OUT;
        const auto x = random_vector(nx, 1), w = random_vector(nw, 2), b = random_vector(p.OUT, 3);
        const auto dy = random_vector(ny, 4), dw0 = random_vector(nw, 5),
                   db0 = random_vector(p.OUT, 6);

        std::vector<float> y(ny), y_nob(ny), dx(nx), dw = dw0, db = db0;
        cpu::linear_forward(p, x.data(), w.data(), b.data(), y.data());
        cpu::linear_forward(p, x.data(), w.data(), nullptr, y_nob.data());
        cpu::linear_backward(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());

        Dev d_x(x), d_w(w), d_b(b), d_dy(dy), d_y(std::vector<float>(ny, 9.f));
        Dev d_y_nob(std::vector<float>(ny, 9.f)), d_dx(std::vector<float>(nx, 9.f));
        Dev d_dw(dw0), d_db(db0), d_dw2(dw0);
        gpu::linear_forward(p, d_x.ptr(), d_w.ptr(), d_b.ptr(), d_y.ptr(), nullptr);
        gpu::linear_forward(p, d_x.ptr(), d_w.ptr(), nullptr, d_y_nob.ptr(), nullptr);
        gpu::linear_backward(p, d_x.ptr(), d_w.ptr(), d_dy.ptr(), d_dx.ptr(), d_dw.ptr(),
                             d_db.ptr(), nullptr);
        gpu::linear_backward(p, d_x.ptr(), d_w.ptr(), d_dy.ptr(), nullptr, d_dw2.ptr(), nullptr,
                             nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(d_y.host(), y, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_y_nob.host(), y_nob, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_dx.host(), dx, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_dw.host(), dw, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_db.host(), db, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_dw2.host(), dw, kGpuVsCpu);  // dx/db skipped, dw still accumulates
    }
}

TEST_CASE("linear GPU backward is bit-identical under every schedule") {
    const LinearParams p{128, 512, 50};
    Dev x(random_vector(size_t(p.N) * p.IN, 7)), w(random_vector(size_t(p.OUT) * p.IN, 8));
    Dev dy(random_vector(size_t(p.N) * p.OUT, 9));
    const std::vector<float> zeros_w(size_t(p.OUT) * p.IN, 0.f), zeros_b(size_t(p.OUT), 0.f);
    const auto grads = gnet::test::results_under_varied_schedules([&] {
        Dev dw(zeros_w), db(zeros_b);
        gpu::linear_backward(p, x.ptr(), w.ptr(), dy.ptr(), nullptr, dw.ptr(), db.ptr(), nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        return std::make_pair(dw.host(), db.host());
    });
    CHECK(gnet::test::all_equal(grads));
}
