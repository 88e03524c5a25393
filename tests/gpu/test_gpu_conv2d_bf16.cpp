// conv2d_bf16 (tensor cores, NHWC) against its CPU twin: every pass over awkward shapes (channel
// counts not divisible by 8, partial tiles, strides, odd sizes) in the op suite, every ResNet18
// conv shape in the slow suite; batch-norm statistics of the forward; Accum::Add; bit-identical
// results under every schedule.
//
// Tolerances follow from bf16: the GPU and the CPU sum the same exact products in different
// orders, so their float32 sums differ by a few float32 roundings (atol below, scaled by sqrt(K)
// and the outputs' rms), and a bf16 output may then round to the neighbouring bf16, one ulp, at
// most 2^-7 of its value (rtol).
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/conv2d_bf16.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"
#include "tests/bf16_vectors.h"
#include "tests/check.h"
#include "tests/gpu/device_array.h"
#include "tests/gpu/schedules.h"

using namespace gnet;
using gnet::test::floats;
using gnet::test::random_bf16;
using gnet::test::Tolerance;

namespace {

struct Shape {
    const char* name;
    int N, C, H, W, OC, KH, KW, stride, pad;
    Conv2dParams params() const { return Conv2dParams::make(N, C, H, W, OC, KH, KW, stride, pad); }
};

std::vector<Shape> awkward_shapes() {
    return {
        {"3x3/1 pad1, C=8 OC=16 (vector loads, partial tile)", 2, 8, 6, 7, 16, 3, 3, 1, 1},
        {"3x3/2 pad1, C=16 OC=24, odd H/W", 1, 16, 9, 11, 24, 3, 3, 2, 1},
        {"1x1/2 downsample, C=32 OC=72 (two N tiles)", 2, 32, 7, 9, 72, 1, 1, 2, 0},
        {"3x3/1 pad1, C=3 OC=5 (element loads, odd N)", 2, 3, 8, 9, 5, 3, 3, 1, 1},
        {"3x2/3 pad1, C=12 OC=10: stride 3, non-square", 2, 12, 7, 5, 10, 3, 2, 3, 1},
        {"7x7/2 pad3 stem, C=1", 1, 1, 15, 13, 8, 7, 7, 2, 3},
        {"1x1x1 image", 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {"C=72 OC=136: partial K step and tiles", 1, 72, 5, 6, 136, 3, 3, 1, 1},
        {"many pixels: split K in backward_weight", 4, 8, 40, 44, 8, 3, 3, 1, 1},
        {"the stem kernel: 1->64 7x7/2, partial blocks", 2, 1, 19, 70, 64, 7, 7, 2, 3},
    };
}

// Every convolution of ResNet18 on a [1, 128, 431] chunk, at batch 1 (the stem's forward is its
// own direct kernel, its backward_weight the element-load GEMM).
std::vector<Shape> resnet18_shapes() {
    return {
        {"stem 1->64 7x7/2", 1, 1, 128, 431, 64, 7, 7, 2, 3},
        {"layer1 64->64 3x3", 1, 64, 32, 108, 64, 3, 3, 1, 1},
        {"layer2.0 64->128 3x3/2", 1, 64, 32, 108, 128, 3, 3, 2, 1},
        {"layer2.0 downsample 1x1/2", 1, 64, 32, 108, 128, 1, 1, 2, 0},
        {"layer2 128->128 3x3", 1, 128, 16, 54, 128, 3, 3, 1, 1},
        {"layer3.0 128->256 3x3/2", 1, 128, 16, 54, 256, 3, 3, 2, 1},
        {"layer3.0 downsample 1x1/2", 1, 128, 16, 54, 256, 1, 1, 2, 0},
        {"layer3 256->256 3x3", 1, 256, 8, 27, 256, 3, 3, 1, 1},
        {"layer4.0 256->512 3x3/2", 1, 256, 8, 27, 512, 3, 3, 2, 1},
        {"layer4.0 downsample 1x1/2", 1, 256, 8, 27, 512, 1, 1, 2, 0},
        {"layer4 512->512 3x3", 1, 512, 4, 14, 512, 3, 3, 1, 1},
    };
}

double rms(const std::vector<float>& v) {
    double s = 0;
    for (float e : v)
        s += double(e) * e;
    return v.empty() ? 0 : std::sqrt(s / double(v.size()));
}

// Float32 sums of K exact products in two orders, then (rtol) one bf16 rounding apart.
Tolerance bf16_output_tolerance(const std::vector<float>& ref, int64_t K) {
    return Tolerance{16 * std::ldexp(1.0, -24) * std::sqrt(double(K)) * rms(ref) + 1e-30,
                     std::ldexp(1.0, -7)};
}
Tolerance float_output_tolerance(const std::vector<float>& ref, int64_t K) {
    return Tolerance{16 * std::ldexp(1.0, -24) * std::sqrt(double(K)) * rms(ref) + 1e-30, 1e-6};
}

template <class T>
using Dev = gnet::test::DeviceArray<T>;

DeviceBuffer buffer_of(size_t bytes) {
    return bytes ? DeviceBuffer(bytes) : DeviceBuffer();
}

void check_all_passes(const Shape& s, unsigned seed) {
    CAPTURE(s.name);
    const Conv2dParams p = s.params();
    const auto x = random_bf16(p.x_size(), seed);
    const auto w = random_bf16(p.w_size(), seed + 1);
    const auto dy = random_bf16(p.y_size(), seed + 2);
    std::vector<Bf16> y(size_t(p.y_size())), dx(size_t(p.x_size())), wt(size_t(p.w_size()));
    std::vector<float> dw(size_t(p.w_size())), sum(size_t(p.OC)), sum_sq(size_t(p.OC));
    ChannelStats stats{sum.data(), sum_sq.data()};
    cpu::conv2d_bf16_forward(p, x.data(), w.data(), y.data(), &stats);
    cpu::conv2d_bf16_ihwo(p, w.data(), wt.data());
    cpu::conv2d_bf16_backward_data(p, dy.data(), wt.data(), dx.data());
    cpu::conv2d_bf16_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);

    Dev<Bf16> d_x(x), d_w(w), d_dy(dy), d_y(p.y_size()), d_dx(p.x_size()), d_wt(p.w_size());
    Dev<float> d_dw(p.w_size()), d_sum(p.OC), d_sum_sq(p.OC);
    DeviceBuffer fws = buffer_of(gpu::conv2d_bf16_forward_workspace_bytes(p, true));
    DeviceBuffer wws = buffer_of(gpu::conv2d_bf16_backward_weight_workspace_bytes(p));
    ChannelStats d_stats{d_sum.ptr(), d_sum_sq.ptr()};
    gpu::conv2d_bf16_forward(p, d_x.ptr(), d_w.ptr(), d_y.ptr(), &d_stats, fws.data(), nullptr);
    gpu::conv2d_bf16_ihwo(p, d_w.ptr(), d_wt.ptr(), nullptr);
    gpu::conv2d_bf16_backward_data(p, d_dy.ptr(), d_wt.ptr(), d_dx.ptr(), nullptr);
    gpu::conv2d_bf16_backward_weight(p, d_x.ptr(), d_dy.ptr(), d_dw.ptr(), Accum::Overwrite,
                                     wws.data(), nullptr);
    GNET_CUDA_CHECK(cudaDeviceSynchronize());

    const std::vector<Bf16> got_wt = d_wt.host();
    CHECK(std::equal(got_wt.begin(), got_wt.end(), wt.begin(),
                     [](Bf16 a, Bf16 b) { return a.bits == b.bits; }));
    const std::vector<float> y_ref = floats(y), dx_ref = floats(dx);
    const int64_t k_fwd = int64_t(p.KH) * p.KW * p.C, k_bwd = int64_t(p.KH) * p.KW * p.OC;
    GNET_CHECK_CLOSE(floats(d_y.host()), y_ref, bf16_output_tolerance(y_ref, k_fwd));
    GNET_CHECK_CLOSE(floats(d_dx.host()), dx_ref, bf16_output_tolerance(dx_ref, k_bwd));
    GNET_CHECK_CLOSE(d_dw.host(), dw, float_output_tolerance(dw, int64_t(p.N) * p.OH * p.OW));
    // Statistics: sums over M = N*OH*OW outputs, each off by the tolerance of a float output.
    const double M = double(p.N) * p.OH * p.OW, y_rms = rms(y_ref);
    const double per_output = 16 * std::ldexp(1.0, -24) * std::sqrt(double(k_fwd)) * y_rms;
    GNET_CHECK_CLOSE(d_sum.host(), sum, (Tolerance{M * per_output + 1e-6 * M * y_rms, 1e-5}));
    GNET_CHECK_CLOSE(d_sum_sq.host(), sum_sq,
                     (Tolerance{M * 2 * per_output * 4 * y_rms + 1e-6 * M * y_rms * y_rms, 1e-5}));
}

}  // namespace

TEST_CASE("conv2d_bf16 GPU matches the CPU twin on awkward shapes: every pass and the statistics") {
    unsigned seed = 100;
    for (const Shape& s : awkward_shapes())
        check_all_passes(s, seed += 3);
}

TEST_CASE("conv2d_bf16 GPU matches the CPU twin on every ResNet18 convolution" *
          doctest::test_suite("slow")) {
    unsigned seed = 200;
    for (const Shape& s : resnet18_shapes())
        check_all_passes(s, seed += 3);
}

TEST_CASE("conv2d_bf16 GPU backward_weight: Accum::Add adds, with and without split-K") {
    for (const Shape& s : {Shape{"split", 4, 8, 40, 44, 8, 3, 3, 1, 1},
                           Shape{"single slice", 1, 16, 5, 6, 24, 3, 3, 1, 1}}) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        const auto x = random_bf16(p.x_size(), 11), dy = random_bf16(p.y_size(), 12);
        const auto start = floats(random_bf16(p.w_size(), 13));
        std::vector<float> dw = start;
        cpu::conv2d_bf16_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Add);
        Dev<Bf16> d_x(x), d_dy(dy);
        Dev<float> d_dw(start);
        DeviceBuffer ws = buffer_of(gpu::conv2d_bf16_backward_weight_workspace_bytes(p));
        gpu::conv2d_bf16_backward_weight(p, d_x.ptr(), d_dy.ptr(), d_dw.ptr(), Accum::Add,
                                         ws.data(), nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(d_dw.host(), dw, float_output_tolerance(dw, int64_t(p.N) * p.OH * p.OW));
    }
    CHECK(gpu::conv2d_bf16_backward_weight_workspace_bytes(
              Conv2dParams::make(4, 8, 40, 44, 8, 3, 3, 1, 1)) > 0);
    CHECK(gpu::conv2d_bf16_backward_weight_workspace_bytes(
              Conv2dParams::make(1, 16, 5, 6, 24, 3, 3, 1, 1)) == 0);
}

TEST_CASE("conv2d_bf16 GPU: dw and the statistics are bit-identical under every schedule") {
    const Conv2dParams p = Conv2dParams::make(4, 8, 40, 44, 8, 3, 3, 1, 1);
    Dev<Bf16> d_x(random_bf16(p.x_size(), 21)), d_w(random_bf16(p.w_size(), 22)),
        d_dy(random_bf16(p.y_size(), 23)), d_y(p.y_size());
    Dev<float> d_dw(p.w_size()), d_sum(p.OC), d_sum_sq(p.OC);
    DeviceBuffer fws = buffer_of(gpu::conv2d_bf16_forward_workspace_bytes(p, true));
    DeviceBuffer wws = buffer_of(gpu::conv2d_bf16_backward_weight_workspace_bytes(p));
    const auto results = gnet::test::results_under_varied_schedules([&] {
        ChannelStats st{d_sum.ptr(), d_sum_sq.ptr()};
        gpu::conv2d_bf16_forward(p, d_x.ptr(), d_w.ptr(), d_y.ptr(), &st, fws.data(), nullptr);
        gpu::conv2d_bf16_backward_weight(p, d_x.ptr(), d_dy.ptr(), d_dw.ptr(), Accum::Overwrite,
                                         wws.data(), nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> all = d_dw.host();
        for (float v : d_sum.host())
            all.push_back(v);
        for (float v : d_sum_sq.host())
            all.push_back(v);
        return all;
    });
    CHECK(gnet::test::all_equal(results));
}

TEST_CASE("conv2d_bf16 GPU without the workspace it needs is an error, not a crash") {
    const Conv2dParams p = Conv2dParams::make(4, 8, 40, 44, 8, 3, 3, 1, 1);
    REQUIRE(gpu::conv2d_bf16_backward_weight_workspace_bytes(p) > 0);
    CHECK_THROWS_WITH(gpu::conv2d_bf16_backward_weight(p, nullptr, nullptr, nullptr,
                                                       Accum::Overwrite, nullptr, nullptr),
                      doctest::Contains("workspace"));
    ChannelStats st{nullptr, nullptr};
    CHECK_THROWS_WITH(gpu::conv2d_bf16_forward(p, nullptr, nullptr, nullptr, &st, nullptr, nullptr),
                      doctest::Contains("workspace"));
}
