// batchnorm_bf16 (channels-last, the mixed-precision path) against its CPU twin: statistics from
// the convolution's sums, the apply pass with each epilogue, the backward with each epilogue,
// even and odd channel counts; the backward's sums bit-identical under every schedule; and
// adam_step_bf16's bf16 copy.
//
// Tolerances: the apply and the backward compute the same float expressions as the twin (up to
// FMA contraction on a GPU), then round once to bf16, so a value may land one bf16 ulp away
// (2^-7 relative); the backward's sums differ by float summation order over M rows.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/adam.h"
#include "kernels/batchnorm_bf16.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"
#include "tests/bf16_vectors.h"
#include "tests/check.h"
#include "tests/gpu/device_array.h"
#include "tests/gpu/schedules.h"

using namespace gnet;
using gnet::test::floats;
using gnet::test::Tolerance;

namespace {

template <class T>
using Dev = gnet::test::DeviceArray<T>;

std::vector<float> uniform(size_t n, unsigned seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (float& e : v)
        e = u(rng);
    return v;
}

std::vector<Bf16> bf16_of(const std::vector<float>& v) {
    std::vector<Bf16> out(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        out[i] = to_bf16(v[i]);
    return out;
}

constexpr Tolerance kBf16Output{1e-6, 1.0 / 128};
constexpr Tolerance kStats{1e-6, 1e-5};

struct Case {
    const char* name;
    int64_t M;
    int C;
};

}  // namespace

TEST_CASE("bn_bf16 GPU matches the CPU twin: statistics, apply and backward, every epilogue") {
    unsigned seed = 1;
    for (const Case& k : {Case{"C=64, M=300 (two backward blocks)", 300, 64},
                          Case{"C=5 (odd: element path)", 77, 5}, Case{"C=512, M=3", 3, 512}}) {
        for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu}) {
            CAPTURE(k.name);
            CAPTURE(int(epi));
            const BnBf16Params p{k.M, k.C};
            const size_t n = size_t(k.M) * size_t(k.C), c = size_t(k.C);
            // A conv output with a per-channel offset, and its float sums as the conv gives them.
            std::vector<float> yf = uniform(n, seed++, -2.f, 2.f);
            const std::vector<float> offset = uniform(c, seed++, -0.5f, 0.5f);
            for (size_t i = 0; i < n; ++i)
                yf[i] += offset[i % c];
            const std::vector<Bf16> y = bf16_of(yf);
            std::vector<float> sum(c, 0.f), sum_sq(c, 0.f);
            {
                std::vector<double> s(c, 0.0), q(c, 0.0);
                for (size_t i = 0; i < n; ++i) {
                    const double v = to_float(y[i]);
                    s[i % c] += v;
                    q[i % c] += v * v;
                }
                for (size_t j = 0; j < c; ++j)
                    sum[j] = float(s[j]), sum_sq[j] = float(q[j]);
            }
            const std::vector<float> gamma = uniform(c, seed++, 0.5f, 1.5f);
            const std::vector<float> beta = uniform(c, seed++, -0.2f, 0.2f);
            const std::vector<Bf16> residual = bf16_of(uniform(n, seed++, -1.f, 1.f));
            const std::vector<Bf16> dz = bf16_of(uniform(n, seed++, -1.f, 1.f));
            const std::vector<float> rm0 = uniform(c, seed++, -0.1f, 0.1f);
            const std::vector<float> rv0 = uniform(c, seed++, 0.5f, 1.5f);
            const std::vector<float> dgamma0 = uniform(c, seed++, -1.f, 1.f);
            const std::vector<float> dbeta0 = uniform(c, seed++, -1.f, 1.f);

            std::vector<float> mean(c), invstd(c), rm = rm0, rv = rv0, dgamma = dgamma0,
                                                   dbeta = dbeta0;
            std::vector<Bf16> z(n), dy(n), dres(n);
            cpu::bn_bf16_finalize(p, sum.data(), sum_sq.data(), mean.data(), invstd.data(),
                                  rm.data(), rv.data());
            cpu::bn_bf16_apply(p, epi, y.data(), mean.data(), invstd.data(), gamma.data(),
                               beta.data(), residual.data(), z.data());
            cpu::bn_bf16_backward(p, epi, dz.data(), z.data(), y.data(), mean.data(), invstd.data(),
                                  gamma.data(), dy.data(), dres.data(), dgamma.data(),
                                  dbeta.data());

            Dev<float> d_sum(sum), d_sum_sq(sum_sq), d_mean(static_cast<int64_t>(c)),
                d_invstd(static_cast<int64_t>(c)), d_rm(rm0), d_rv(rv0), d_gamma(gamma),
                d_beta(beta), d_dgamma(dgamma0), d_dbeta(dbeta0);
            Dev<Bf16> d_y(y), d_res(residual), d_dz(dz), d_z(static_cast<int64_t>(n)),
                d_dy(static_cast<int64_t>(n)), d_dres(static_cast<int64_t>(n));
            DeviceBuffer ws(gpu::bn_bf16_backward_workspace_bytes(p));
            gpu::bn_bf16_finalize(p, d_sum.ptr(), d_sum_sq.ptr(), d_mean.ptr(), d_invstd.ptr(),
                                  d_rm.ptr(), d_rv.ptr(), nullptr);
            gpu::bn_bf16_apply(p, epi, d_y.ptr(), d_mean.ptr(), d_invstd.ptr(), d_gamma.ptr(),
                               d_beta.ptr(), d_res.ptr(), d_z.ptr(), nullptr);
            // The backward reads the twin's z, so a ReLU mask decided by one rounding apart
            // cannot make the two backwards differ.
            Dev<Bf16> d_zref(z);
            gpu::bn_bf16_backward(p, epi, d_dz.ptr(), d_zref.ptr(), d_y.ptr(), d_mean.ptr(),
                                  d_invstd.ptr(), d_gamma.ptr(), d_dy.ptr(), d_dres.ptr(),
                                  d_dgamma.ptr(), d_dbeta.ptr(), ws.data(), nullptr);
            GNET_CUDA_CHECK(cudaDeviceSynchronize());
            GNET_CHECK_CLOSE(d_mean.host(), mean, kStats);
            GNET_CHECK_CLOSE(d_invstd.host(), invstd, kStats);
            GNET_CHECK_CLOSE(d_rm.host(), rm, kStats);
            GNET_CHECK_CLOSE(d_rv.host(), rv, kStats);
            GNET_CHECK_CLOSE(floats(d_z.host()), floats(z), kBf16Output);
            // dy: gamma invstd (g - (sum g + xhat sum g xhat) / M); the sums' float order moves
            // it by about sqrt(M) float ulps of the sums' scale, well inside one bf16 rounding.
            GNET_CHECK_CLOSE(floats(d_dy.host()), floats(dy), (Tolerance{1e-4, 1.0 / 128}));
            if (epi == BnEpilogue::AddRelu)
                GNET_CHECK_CLOSE(floats(d_dres.host()), floats(dres), (Tolerance{0, 0}));
            const double sum_scale = std::sqrt(double(k.M));
            GNET_CHECK_CLOSE(d_dbeta.host(), dbeta, (Tolerance{1e-5 * sum_scale, 1e-5}));
            GNET_CHECK_CLOSE(d_dgamma.host(), dgamma, (Tolerance{1e-5 * sum_scale, 1e-5}));
        }
    }
}

TEST_CASE("bn_bf16 GPU eval statistics and the backward's sums are deterministic") {
    const BnBf16Params p{1000, 64};
    const size_t n = 64000;
    Dev<Bf16> y(bf16_of(uniform(n, 5, -1.f, 1.f))), dz(bf16_of(uniform(n, 6, -1.f, 1.f))),
        z(bf16_of(uniform(n, 7, -1.f, 1.f))), dy(static_cast<int64_t>(n)),
        dres(static_cast<int64_t>(n));
    Dev<float> mean(uniform(64, 8, -0.1f, 0.1f)), invstd(uniform(64, 9, 0.5f, 2.f)),
        gamma(uniform(64, 10, 0.5f, 1.5f)), dgamma(int64_t(64)), dbeta(int64_t(64));
    DeviceBuffer ws(gpu::bn_bf16_backward_workspace_bytes(p));
    const auto results = gnet::test::results_under_varied_schedules([&] {
        GNET_CUDA_CHECK(cudaMemset(dgamma.ptr(), 0, 64 * sizeof(float)));
        GNET_CUDA_CHECK(cudaMemset(dbeta.ptr(), 0, 64 * sizeof(float)));
        gpu::bn_bf16_backward(p, BnEpilogue::Relu, dz.ptr(), z.ptr(), y.ptr(), mean.ptr(),
                              invstd.ptr(), gamma.ptr(), dy.ptr(), dres.ptr(), dgamma.ptr(),
                              dbeta.ptr(), ws.data(), nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> all = dgamma.host();
        for (float v : dbeta.host())
            all.push_back(v);
        for (Bf16 v : dy.host())
            all.push_back(to_float(v));
        return all;
    });
    CHECK(gnet::test::all_equal(results));

    // Evaluation: mean and invstd from the running statistics.
    const std::vector<float> rm = uniform(64, 11, -1.f, 1.f), rv = uniform(64, 12, 0.1f, 2.f);
    std::vector<float> m_ref(64), s_ref(64);
    cpu::bn_bf16_eval_stats(p, rm.data(), rv.data(), m_ref.data(), s_ref.data());
    Dev<float> d_rm(rm), d_rv(rv);
    gpu::bn_bf16_eval_stats(p, d_rm.ptr(), d_rv.ptr(), mean.ptr(), invstd.ptr(), nullptr);
    GNET_CUDA_CHECK(cudaDeviceSynchronize());
    GNET_CHECK_CLOSE(mean.host(), m_ref, kStats);
    GNET_CHECK_CLOSE(invstd.host(), s_ref, kStats);
}

TEST_CASE("adam_step_bf16 GPU: the float update of adam_step and its bf16 copy") {
    for (int64_t n : {int64_t(1001), int64_t(4096)}) {
        CAPTURE(n);
        const std::vector<float> w0 = uniform(size_t(n), 20, -1.f, 1.f);
        const std::vector<float> g = uniform(size_t(n), 21, -1.f, 1.f);
        AdamParams a;
        a.lr = 1e-2f;
        a.mode = AdamMode::AdamW;
        a.weight_decay = 0.01f;
        std::vector<float> w = w0, m(size_t(n), 0.f), v(size_t(n), 0.f);
        std::vector<Bf16> copy(static_cast<size_t>(n));
        cpu::adam_step_bf16(a, n, w.data(), g.data(), m.data(), v.data(), copy.data());
        for (int64_t i = 0; i < n; ++i)
            REQUIRE(copy[size_t(i)].bits == to_bf16(w[size_t(i)]).bits);
        Dev<float> d_w(w0), d_g(g), d_m(std::vector<float>(size_t(n), 0.f)),
            d_v(std::vector<float>(size_t(n), 0.f));
        Dev<Bf16> d_copy(n);
        gpu::adam_step_bf16(a, n, d_w.ptr(), d_g.ptr(), d_m.ptr(), d_v.ptr(), d_copy.ptr(),
                            nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> gw = d_w.host();
        GNET_CHECK_CLOSE(gw, w, (Tolerance{1e-7, 1e-5}));
        const std::vector<Bf16> gc = d_copy.host();
        bool copies_match = true;
        for (int64_t i = 0; i < n; ++i)
            copies_match = copies_match && gc[size_t(i)].bits == to_bf16(gw[size_t(i)]).bits;
        CHECK(copies_match);
    }
}
