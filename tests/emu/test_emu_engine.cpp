// The emulated device itself: that its bug-finding modes find bugs. Each case plants one (a
// missing barrier, a barrier only part of a block reaches, a bad shuffle mask, a launch beyond the
// limits, a host pointer passed to a kernel, a read of memory nobody wrote, a bad copy, a cuFFT
// buffer too small) and checks that the emulator reports it, naming the kernel; and that the
// warp collectives and cuFFT compute what CUDA's documentation says.
#include <doctest/doctest.h>

#include <cuda_runtime.h>
#include <cufft.h>

#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "kernels/launch.cuh"
#include "nn/buffer.h"
#include "tests/gpu/schedules.h"

using namespace gnet;

namespace {

// ---------------------------------------------------------------------------------------------
// Kernels with planted bugs (and their correct twins)
// ---------------------------------------------------------------------------------------------
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
    GNET_DYNAMIC_SHARED(float, s);
    const unsigned t = threadIdx.x;
    s[t] = float(t);
    if (kBarrier) __syncthreads();
    out[t] = s[(t + 1) % blockDim.x];
}

__global__ void early_exit_kernel(float* out) {
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1.f;
}

__global__ void two_barriers_kernel(float* out) {
    if (threadIdx.x % 2 == 0) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.f;
}

__global__ void full_mask_shuffle_kernel(float* out) {
    out[threadIdx.x] = __shfl_sync(0xffffffffu, float(threadIdx.x), 0);
}

__global__ void mask_without_caller_kernel(float* out) {
    out[threadIdx.x] = __shfl_down_sync(threadIdx.x == 3 ? 0xfffffff7u : 0xffffffffu, 1.f, 1);
}

__global__ void barrier_in_warp_collective_kernel(float* out) {
    if (threadIdx.x == 0) {
        __syncthreads();
    } else {
        out[threadIdx.x] = __shfl_sync(0xffffffffu, 1.f, 0);
    }
}

__global__ void last_writer_kernel(int* out) {
    __syncthreads();
    out[0] = int(threadIdx.x + blockIdx.x * blockDim.x);
}

__global__ void copy_kernel(const float* in, float* out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = in[i];
}

__global__ void big_shared_kernel(float* out) {
    GNET_DYNAMIC_SHARED(float, s);
    s[threadIdx.x] = 1.f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

// Every lane of one warp: the four shuffles, ballot/any/all, and a syncwarp.
__global__ void collectives_kernel(int* out, int width) {
    const int l = int(threadIdx.x);
    int* o = out + l * 8;
    o[0] = __shfl_sync(0xffffffffu, l * 10, 5, width);
    o[1] = __shfl_up_sync(0xffffffffu, l * 10, 3, width);
    o[2] = __shfl_down_sync(0xffffffffu, l * 10, 3, width);
    o[3] = __shfl_xor_sync(0xffffffffu, l * 10, 6, width);
    o[4] = int(__ballot_sync(0xffffffffu, l % 3 == 0));
    o[5] = __any_sync(0xffffffffu, l == 31);
    o[6] = __all_sync(0xffffffffu, l < 31);
    __syncwarp();
    o[7] = l < 16 ? __shfl_down_sync(0x0000ffffu, l, 4, 8) : -1;  // a half-warp collective
}

std::vector<float> host(const DeviceBuffer& b, size_t n) {
    std::vector<float> v(n);
    GNET_CUDA_CHECK(cudaMemcpy(v.data(), b.data(), n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
}

// The message of the Error a launch throws ("" when it does not throw).
template <class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a missing __syncthreads gives a wrong result in some fiber order; with it, none does") {
    DeviceBuffer out(64 * sizeof(float));
    std::vector<float> want(64);
    for (int t = 0; t < 64; ++t)
        want[size_t(t)] = float((t + 1) % 64);
    const auto with_barrier = gnet::test::results_under_varied_schedules([&] {
        launch<neighbour_kernel<true>>(1, 64, 64 * sizeof(float), nullptr, out.as<float>());
        return host(out, 64);
    });
    for (const auto& r : with_barrier)
        CHECK(r == want);
    const auto without = gnet::test::results_under_varied_schedules([&] {
        launch<neighbour_kernel<false>>(1, 64, 64 * sizeof(float), nullptr, out.as<float>());
        return host(out, 64);
    });
    int wrong = 0;
    for (const auto& r : without)
        wrong += r != want;
    CHECK(wrong > 0);
}

TEST_CASE("a barrier reached by only part of the block, or at two call sites, is an error") {
    DeviceBuffer out(64 * sizeof(float));
    const std::string partial =
        error_of([&] { launch<early_exit_kernel>(1, 64, 0, nullptr, out.as<float>()); });
    CHECK(contains(partial, "early_exit_kernel"));
    CHECK(contains(partial, "only part of the block"));
    const std::string sites =
        error_of([&] { launch<two_barriers_kernel>(1, 64, 0, nullptr, out.as<float>()); });
    CHECK(contains(sites, "two_barriers_kernel"));
    CHECK(contains(sites, "__syncthreads"));
    // The engine is ready for the next launch after a fault.
    CHECK(error_of([&] {
              launch<full_mask_shuffle_kernel>(1, 32, 0, nullptr, out.as<float>());
          }).empty());
}

TEST_CASE("shuffle masks that name absent lanes or leave out the caller are errors") {
    DeviceBuffer out(64 * sizeof(float));
    const std::string absent =
        error_of([&] { launch<full_mask_shuffle_kernel>(1, 16, 0, nullptr, out.as<float>()); });
    CHECK(contains(absent, "full_mask_shuffle_kernel"));
    CHECK(contains(absent, "does not have"));
    const std::string caller =
        error_of([&] { launch<mask_without_caller_kernel>(1, 32, 0, nullptr, out.as<float>()); });
    CHECK(contains(caller, "leaves out the calling lane 3"));
    const std::string stuck = error_of(
        [&] { launch<barrier_in_warp_collective_kernel>(1, 32, 0, nullptr, out.as<float>()); });
    CHECK((contains(stuck, "no thread can go on") || contains(stuck, "disagree") ||
           contains(stuck, "__syncthreads")));
}

TEST_CASE("warp collectives compute what CUDA documents, for every width") {
    DeviceBuffer out(32 * 8 * sizeof(int));
    for (int width : {32, 16, 8}) {
        CAPTURE(width);
        launch<collectives_kernel>(1, 32, 0, nullptr, out.as<int>(), width);
        std::vector<int> o(32 * 8);
        GNET_CUDA_CHECK(
            cudaMemcpy(o.data(), out.data(), o.size() * sizeof(int), cudaMemcpyDefault));
        unsigned ballot = 0;
        for (int l = 0; l < 32; ++l)
            if (l % 3 == 0) ballot |= 1u << l;
        for (int l = 0; l < 32; ++l) {
            CAPTURE(l);
            const int base = l / width * width, pos = l - base;
            const int* r = &o[size_t(l) * 8];
            CHECK(r[0] == (base + 5 % width) * 10);
            CHECK(r[1] == (pos >= 3 ? l - 3 : l) * 10);
            CHECK(r[2] == (pos + 3 < width ? l + 3 : l) * 10);
            CHECK(r[3] == (((l ^ 6) / width * width) > base ? l : l ^ 6) * 10);
            CHECK(unsigned(r[4]) == ballot);
            CHECK(r[5] == 1);
            CHECK(r[6] == 0);
            CHECK(r[7] == (l < 16 ? (l % 8 + 4 < 8 ? l + 4 : l) : -1));
        }
    }
}

TEST_CASE("launches beyond the device's limits are refused, naming the kernel") {
    DeviceBuffer out(2048 * sizeof(float));
    CHECK(contains(error_of([&] {
                       launch<copy_kernel>(1, 1025, 0, nullptr, out.as<float>(), out.as<float>(),
                                           0);
                   }),
                   "copy_kernel"));
    CHECK(contains(error_of([&] {
                       launch<copy_kernel>(dim3(1, 65536), 32, 0, nullptr, out.as<float>(),
                                           out.as<float>(), 0);
                   }),
                   "exceeds the limits"));
    CHECK(contains(error_of([&] {
                       launch<copy_kernel>(dim3(1, 1, 1), dim3(1, 1, 65), 0, nullptr,
                                           out.as<float>(), out.as<float>(), 0);
                   }),
                   "exceeds the limits"));
    // Dynamic shared memory: 48 KiB unless the kernel's attribute raises it, up to 227 KiB.
    const size_t big = 64 * 1024;
    CHECK(contains(
        error_of([&] { launch<big_shared_kernel>(1, 256, big, nullptr, out.as<float>()); }),
        "cudaFuncSetAttribute"));
    GNET_CUDA_CHECK(cudaFuncSetAttribute(big_shared_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(big)));
    CHECK(error_of([&] {
              launch<big_shared_kernel>(1, 256, big, nullptr, out.as<float>());
          }).empty());
    CHECK(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               300 * 1024) == cudaErrorInvalidValue);
    cudaGetLastError();
}

TEST_CASE("host memory given to a kernel or to the wrong side of a copy is an error") {
    DeviceBuffer dev(256 * sizeof(float));
    std::vector<float> host_mem(256, 1.f);
    const std::string arg = error_of(
        [&] { launch<copy_kernel>(1, 32, 0, nullptr, host_mem.data(), dev.as<float>(), 256); });
    CHECK(contains(arg, "argument 0"));
    CHECK(contains(arg, "host memory"));
    CHECK(cudaMemcpy(dev.data(), dev.data(), 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(host_mem.data(), host_mem.data(), 16, cudaMemcpyDeviceToHost) ==
          cudaErrorInvalidValue);
    CHECK(cudaMemset(host_mem.data(), 0, 16) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(dev.data(), host_mem.data(), 257 * sizeof(float), cudaMemcpyHostToDevice) ==
          cudaErrorInvalidValue);  // one float beyond the allocation
    CHECK(cudaFree(host_mem.data()) == cudaErrorInvalidValue);
    cudaGetLastError();
}

TEST_CASE("device memory nobody wrote reads as NaN; the allocation is counted") {
    size_t free0 = 0, free1 = 0, total = 0;
    GNET_CUDA_CHECK(cudaMemGetInfo(&free0, &total));
    CHECK(total == size_t(80) << 30);
    DeviceBuffer in(1000 * sizeof(float)), out(1000 * sizeof(float));
    GNET_CUDA_CHECK(cudaMemGetInfo(&free1, &total));
    CHECK(free0 - free1 == 2000 * sizeof(float));
    launch<copy_kernel>(4, 64, 0, nullptr, in.as<float>(), out.as<float>(), 1000);
    for (float v : host(out, 1000))
        CHECK(std::isnan(v));
}

TEST_CASE("results_under_varied_schedules really varies the schedule") {
    DeviceBuffer out(sizeof(int));
    const auto winners = gnet::test::results_under_varied_schedules([&] {
        launch<last_writer_kernel>(4, 64, 0, nullptr, out.as<int>());
        int w = 0;
        GNET_CUDA_CHECK(cudaMemcpy(&w, out.data(), sizeof w, cudaMemcpyDeviceToHost));
        return w;
    });
    CHECK_FALSE(gnet::test::all_equal(winners));
}

TEST_CASE("cuFFT R2C in the advanced layout equals a direct DFT; bad sizes and buffers refused") {
    // 3 transforms of n = 12, input stride 2 and distance 30, output stride 1 and distance 8.
    const int n = 12, batch = 3, istride = 2, idist = 30, odist = 8, F = n / 2 + 1;
    std::vector<float> x(size_t(batch) * idist, 0.f);
    for (int b = 0; b < batch; ++b)
        for (int k = 0; k < n; ++k)
            x[size_t(b * idist + k * istride)] = std::sin(0.7f * float(k + b)) + 0.1f * float(k);
    DeviceBuffer dx(x.size() * sizeof(float)), dy(size_t(batch) * odist * sizeof(cufftComplex));
    GNET_CUDA_CHECK(cudaMemcpy(dx.data(), x.data(), dx.bytes(), cudaMemcpyHostToDevice));
    int nn = n, inembed = n, onembed = F;
    cufftHandle plan = 0;
    REQUIRE(cufftPlanMany(&plan, 1, &nn, &inembed, istride, idist, &onembed, 1, odist, CUFFT_R2C,
                          batch) == CUFFT_SUCCESS);
    REQUIRE(cufftExecR2C(plan, dx.as<cufftReal>(), dy.as<cufftComplex>()) == CUFFT_SUCCESS);
    std::vector<cufftComplex> y(size_t(batch) * odist);
    GNET_CUDA_CHECK(cudaMemcpy(y.data(), dy.data(), dy.bytes(), cudaMemcpyDeviceToHost));
    for (int b = 0; b < batch; ++b)
        for (int f = 0; f < F; ++f) {
            std::complex<double> s = 0;
            for (int k = 0; k < n; ++k)
                s += double(x[size_t(b * idist + k * istride)]) *
                     std::polar(1.0, -2.0 * M_PI * f * k / n);
            const cufftComplex got = y[size_t(b * odist + f)];
            CHECK(std::fabs(got.x - s.real()) < 1e-4);
            CHECK(std::fabs(got.y - s.imag()) < 1e-4);
        }
    // The output buffer one transform short for the layout.
    DeviceBuffer small(size_t(batch - 1) * odist * sizeof(cufftComplex));
    CHECK(cufftExecR2C(plan, dx.as<cufftReal>(), small.as<cufftComplex>()) == CUFFT_EXEC_FAILED);
    cudaGetLastError();
    CHECK(cufftDestroy(plan) == CUFFT_SUCCESS);
    CHECK(cufftDestroy(plan) == CUFFT_INVALID_PLAN);
    // Beyond the 32-bit interface: 2^31 elements.
    int big = 2048, be = 2048, bo = 1025;
    cufftHandle huge = 0;
    CHECK(cufftPlanMany(&huge, 1, &big, &be, 1, 2048, &bo, 1, 1025, CUFFT_R2C, (1 << 20) + 1) ==
          CUFFT_INVALID_SIZE);
}
