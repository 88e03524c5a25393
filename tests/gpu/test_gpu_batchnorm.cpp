// BatchNorm2d GPU twin against the CPU twin: awkward shapes (N = 1, odd HW, C = 3/17/33, HW = 1),
// shapes that take the two-stage split (scalar and float4 paths), every ResNet18 BN shape at
// batch 2, all epilogues, training/evaluation/backward; bit-identical under varied schedules;
// cuDNN's forward training when cuDNN is at hand.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/cuda_check.h"
#include "nn/tensor.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"

#if GNET_HAVE_CUDNN
#include "kernels/cudnn_check.h"
#endif

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// GPU float elementwise maths vs the CPU twin's double maths; statistics are double on both.
constexpr Tolerance kForward{2e-5, 1e-5};
constexpr Tolerance kStats{1e-6, 1e-5};
constexpr Tolerance kBackward{2e-5, 1e-4};
constexpr Tolerance kParamGrad{1e-4, 1e-5};  // sums of up to 27648 terms, double on both sides
constexpr Tolerance kCudnn{1e-4, 1e-4};

struct BnShape {
    int N, C, HW;
};

std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.f, float shift = 0.f) {
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<float> v(n);
    for (float& x : v)
        x = d(rng) * scale + shift;
    return v;
}

Tensor dev(const std::vector<float>& v) {
    return Tensor::from_vector({int64_t(v.size())}, v, Device::CUDA);
}

const char* name_of(BnEpilogue e) {
    return e == BnEpilogue::None ? "none" : e == BnEpilogue::Relu ? "relu" : "addrelu";
}

void check_shape(BnShape s, BnEpilogue epi, unsigned seed) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.HW);
    CAPTURE(name_of(epi));
    std::mt19937 rng(seed);
    const size_t n = size_t(s.N) * s.C * s.HW;
    const BatchNormParams p{s.N, s.C, s.HW};
    const bool add = epi == BnEpilogue::AddRelu;
    const auto x = randn(n, rng, 2.f, 1.f), res = randn(n, rng), dy = randn(n, rng);
    const auto gamma = randn(s.C, rng, 0.3f, 1.f), beta = randn(s.C, rng, 0.5f);
    const auto rm0 = randn(s.C, rng), rv0 = randn(s.C, rng, 0.1f, 1.f);
    const auto dg0 = randn(s.C, rng), db0 = randn(s.C, rng);

    // CPU reference.
    std::vector<float> y(n), rm = rm0, rv = rv0, sm(s.C), si(s.C);
    cpu::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(),
                                 add ? res.data() : nullptr, y.data(), rm.data(), rv.data(),
                                 sm.data(), si.data());
    std::vector<float> ye(n);
    cpu::batchnorm_forward_eval(p, epi, x.data(), gamma.data(), beta.data(),
                                add ? res.data() : nullptr, rm0.data(), rv0.data(), ye.data());
    std::vector<float> dx(n), dres(add ? n : 0), dg = dg0, db = db0;
    cpu::batchnorm_backward(p, epi, x.data(), y.data(), dy.data(), gamma.data(), sm.data(),
                            si.data(), dx.data(), add ? dres.data() : nullptr, dg.data(),
                            db.data());

    // GPU.
    Tensor gx = dev(x), gres = dev(res), gdy = dev(dy), ggamma = dev(gamma), gbeta = dev(beta);
    Tensor gy = Tensor::empty({int64_t(n)}, Device::CUDA), grm = dev(rm0), grv = dev(rv0);
    Tensor gsm = Tensor::empty({s.C}, Device::CUDA), gsi = Tensor::empty({s.C}, Device::CUDA);
    gpu::batchnorm_forward_train(p, epi, gx.data(), ggamma.data(), gbeta.data(),
                                 add ? gres.data() : nullptr, gy.data(), grm.data(), grv.data(),
                                 gsm.data(), gsi.data(), nullptr);
    GNET_CHECK_CLOSE(gy.to_host(), y, kForward);
    GNET_CHECK_CLOSE(gsm.to_host(), sm, kStats);
    GNET_CHECK_CLOSE(gsi.to_host(), si, kStats);
    GNET_CHECK_CLOSE(grm.to_host(), rm, kStats);
    GNET_CHECK_CLOSE(grv.to_host(), rv, kStats);

    Tensor grm0 = dev(rm0), grv0 = dev(rv0), gye = Tensor::empty({int64_t(n)}, Device::CUDA);
    gpu::batchnorm_forward_eval(p, epi, gx.data(), ggamma.data(), gbeta.data(),
                                add ? gres.data() : nullptr, grm0.data(), grv0.data(), gye.data(),
                                nullptr);
    GNET_CHECK_CLOSE(gye.to_host(), ye, kForward);

    // Backward from the CPU's forward results, so both see the same mask and statistics.
    Tensor gyc = dev(y), gsmc = dev(sm), gsic = dev(si), gdg = dev(dg0), gdb = dev(db0);
    Tensor gdx = Tensor::empty({int64_t(n)}, Device::CUDA);
    Tensor gdres = Tensor::empty({int64_t(add ? n : 1)}, Device::CUDA);
    gpu::batchnorm_backward(p, epi, gx.data(), gyc.data(), gdy.data(), ggamma.data(), gsmc.data(),
                            gsic.data(), gdx.data(), add ? gdres.data() : nullptr, gdg.data(),
                            gdb.data(), nullptr);
    GNET_CHECK_CLOSE(gdx.to_host(), dx, kBackward);
    GNET_CHECK_CLOSE(gdg.to_host(), dg, kParamGrad);
    GNET_CHECK_CLOSE(gdb.to_host(), db, kParamGrad);
    if (add) GNET_CHECK_CLOSE(gdres.to_host(), dres, kBackward);
}

const std::vector<BnShape> kAwkward = {
    {1, 3, 7},        // N = 1, odd HW
    {2, 17, 15},      // C = 17
    {3, 33, 9},       // C = 33
    {2, 4, 1},        // HW = 1: two values per channel
    {1, 5, 4},        // float4 path, tiny
    {2, 3, 20001},    // two-stage split, scalar path (odd HW)
    {4, 5, 4096},     // two-stage split, float4 path
    {1, 2, 1200001},  // more splits than the cap (scalar path)
};

// Every BatchNorm of ResNet18 on a 128 x 431 log-mel at batch 2: (C, OH x OW).
const std::vector<BnShape> kResNet18 = {
    {2, 64, 64 * 216}, {2, 64, 32 * 108}, {2, 128, 16 * 54}, {2, 256, 8 * 27}, {2, 512, 4 * 14},
};

}  // namespace

TEST_CASE("gpu batchnorm matches the CPU twin on awkward shapes, every epilogue") {
    unsigned seed = 1;
    for (BnShape s : kAwkward)
        for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu})
            check_shape(s, epi, seed++);
}

TEST_CASE("gpu batchnorm matches the CPU twin on every ResNet18 shape at batch 2") {
    unsigned seed = 100;
    for (BnShape s : kResNet18)
        for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu})
            check_shape(s, epi, seed++);
}

TEST_CASE("gpu batchnorm is deterministic: bit-identical under every schedule") {
    for (BnShape s : {BnShape{2, 64, 64 * 216}, BnShape{2, 3, 20001}}) {
        CAPTURE(s.HW);
        std::mt19937 rng(5);
        const size_t n = size_t(s.N) * s.C * s.HW;
        const BatchNormParams p{s.N, s.C, s.HW};
        Tensor x = dev(randn(n, rng, 3.f, 2.f)), res = dev(randn(n, rng)), dy = dev(randn(n, rng));
        Tensor gamma = dev(randn(s.C, rng, 0.2f, 1.f)), beta = dev(randn(s.C, rng));
        const auto outs = gnet::test::results_under_varied_schedules([&] {
            std::vector<std::vector<float>> out;
            Tensor y = Tensor::empty({int64_t(n)}, Device::CUDA);
            Tensor rm = Tensor::zeros({s.C}, Device::CUDA), rv = Tensor::zeros({s.C}, Device::CUDA);
            Tensor sm = Tensor::empty({s.C}, Device::CUDA), si = Tensor::empty({s.C}, Device::CUDA);
            Tensor dx = Tensor::empty({int64_t(n)}, Device::CUDA);
            Tensor dres = Tensor::empty({int64_t(n)}, Device::CUDA);
            Tensor dg = Tensor::zeros({s.C}, Device::CUDA), db = Tensor::zeros({s.C}, Device::CUDA);
            gpu::batchnorm_forward_train(p, BnEpilogue::AddRelu, x.data(), gamma.data(),
                                         beta.data(), res.data(), y.data(), rm.data(), rv.data(),
                                         sm.data(), si.data(), nullptr);
            gpu::batchnorm_backward(p, BnEpilogue::AddRelu, x.data(), y.data(), dy.data(),
                                    gamma.data(), sm.data(), si.data(), dx.data(), dres.data(),
                                    dg.data(), db.data(), nullptr);
            for (const Tensor* t : {&y, &rm, &rv, &sm, &si, &dx, &dres, &dg, &db})
                out.push_back(t->to_host());
            return out;
        });
        CHECK(gnet::test::all_equal(outs));
    }
}

TEST_CASE("gpu batchnorm refuses outputs that overlap its inputs") {
    const BatchNormParams p{2, 3, 20001};
    const size_t n = size_t(p.N) * p.C * p.HW;
    Tensor x = Tensor::zeros({int64_t(n)}, Device::CUDA), c = Tensor::zeros({3}, Device::CUDA);
    CHECK_THROWS_AS(
        gpu::batchnorm_forward_train(p, BnEpilogue::None, x.data(), c.data(), c.data(), nullptr,
                                     x.data(), c.data(), c.data(), c.data(), c.data(), nullptr),
        Error);
    CHECK_THROWS_AS(
        gpu::batchnorm_backward(p, BnEpilogue::None, x.data(), nullptr, x.data(), c.data(),
                                c.data(), c.data(), x.data(), nullptr, c.data(), c.data(), nullptr),
        Error);
}

#if GNET_HAVE_CUDNN
TEST_CASE("gpu batchnorm forward training agrees with cuDNN's") {
    for (BnShape s : {BnShape{2, 64, 64 * 216}, BnShape{2, 17, 15}}) {
        CAPTURE(s.C);
        std::mt19937 rng(9);
        const size_t n = size_t(s.N) * s.C * s.HW;
        const BatchNormParams p{s.N, s.C, s.HW};
        Tensor x = dev(randn(n, rng, 2.f, 1.f));
        Tensor gamma = dev(randn(s.C, rng, 0.2f, 1.f)), beta = dev(randn(s.C, rng));
        const auto rm0 = randn(s.C, rng), rv0 = randn(s.C, rng, 0.1f, 1.f);
        Tensor y = Tensor::empty({int64_t(n)}, Device::CUDA), rm = dev(rm0), rv = dev(rv0);
        Tensor sm = Tensor::empty({s.C}, Device::CUDA), si = Tensor::empty({s.C}, Device::CUDA);
        gpu::batchnorm_forward_train(p, BnEpilogue::None, x.data(), gamma.data(), beta.data(),
                                     nullptr, y.data(), rm.data(), rv.data(), sm.data(), si.data(),
                                     nullptr);

        cudnnHandle_t handle;
        GNET_CUDNN_CHECK(cudnnCreate(&handle));
        cudnnTensorDescriptor_t xd, cd;
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&cd));
        GNET_CUDNN_CHECK(
            cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, 1, s.HW));
        GNET_CUDNN_CHECK(
            cudnnSetTensor4dDescriptor(cd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.C, 1, 1));
        Tensor y2 = Tensor::empty({int64_t(n)}, Device::CUDA), rm2 = dev(rm0), rv2 = dev(rv0);
        Tensor sm2 = Tensor::empty({s.C}, Device::CUDA), si2 = Tensor::empty({s.C}, Device::CUDA);
        const float one = 1.f, zero = 0.f;
        GNET_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
            handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, x.data(), xd, y2.data(), cd,
            gamma.data(), beta.data(), double(p.momentum), rm2.data(), rv2.data(), double(p.eps),
            sm2.data(), si2.data()));
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(y.to_host(), y2.to_host(), kCudnn);
        GNET_CHECK_CLOSE(rm.to_host(), rm2.to_host(), kCudnn);
        GNET_CHECK_CLOSE(rv.to_host(), rv2.to_host(), kCudnn);
        GNET_CHECK_CLOSE(sm.to_host(), sm2.to_host(), kCudnn);
        GNET_CHECK_CLOSE(si.to_host(), si2.to_host(), kCudnn);
        cudnnDestroyTensorDescriptor(xd);
        cudnnDestroyTensorDescriptor(cd);
        cudnnDestroy(handle);
    }
}
#endif
