// The fast CPU backend's non-convolution ops against their reference twins: batch norm (train
// forward with every epilogue, eval forward, backward), max-pool (bit-identical), Adam / AdamW
// and add, over ResNet18's shapes and awkward ones (N = 1, odd HW, C not a multiple of 8, HW
// below one vector). The convolutions have their own file (test_conv2d_fast.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "kernels/add.h"
#include "kernels/batchnorm.h"
#include "kernels/gemm_cpu_fast.h"
#include "kernels/maxpool2d.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// BN: float row sums instead of double element sums; the outputs are O(1) after normalising.
constexpr Tolerance kBnTol{2e-5, 2e-5};
constexpr Tolerance kBnStatTol{1e-6, 1e-5};
// Adam: the same formula; FMA contraction may round a multiply-add once instead of twice.
constexpr Tolerance kAdamTol{1e-7, 1e-6};

std::vector<float> random_vector(int64_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& e : v)
        e = u(rng);
    return v;
}

void close(const std::vector<float>& got, const std::vector<float>& ref, Tolerance tol,
           const std::string& what) {
    const auto c = gnet::test::compare_arrays(got, ref, tol);
    INFO(what << ": " << c.report);
    CHECK(c.ok);
}

struct BnShape {
    int N, C, HW;
};

void check_batchnorm(const BnShape& s, BnEpilogue epi) {
    const BatchNormParams p{s.N, s.C, s.HW};
    const int64_t n = int64_t(s.N) * s.C * s.HW;
    const std::string tag = "N" + std::to_string(s.N) + " C" + std::to_string(s.C) + " HW" +
                            std::to_string(s.HW) + " epi " + std::to_string(int(epi));
    // An offset mean so that the two-pass variance matters.
    const auto x = random_vector(n, 1, 2.f, 4.f), dy = random_vector(n, 2);
    const auto gamma = random_vector(s.C, 3, 0.5f, 1.5f), beta = random_vector(s.C, 4);
    const auto res = random_vector(n, 5);
    const float* residual = epi == BnEpilogue::AddRelu ? res.data() : nullptr;

    std::vector<float> y_ref(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    std::vector<float> rm_ref(size_t(s.C), 0.1f), rv_ref(size_t(s.C), 0.9f), rm(rm_ref), rv(rv_ref);
    std::vector<float> sm_ref(size_t(s.C)), si_ref(size_t(s.C)), sm(size_t(s.C)), si(size_t(s.C));
    cpu::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(), residual,
                                 y_ref.data(), rm_ref.data(), rv_ref.data(), sm_ref.data(),
                                 si_ref.data());
    cpu_fast::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(), residual,
                                      y.data(), rm.data(), rv.data(), sm.data(), si.data());
    close(y, y_ref, kBnTol, tag + " forward_train y");
    close(sm, sm_ref, kBnStatTol, tag + " save_mean");
    close(si, si_ref, kBnStatTol, tag + " save_invstd");
    close(rm, rm_ref, kBnStatTol, tag + " running_mean");
    close(rv, rv_ref, kBnStatTol, tag + " running_var");

    std::vector<float> e_ref(static_cast<size_t>(n)), e(static_cast<size_t>(n));
    cpu::batchnorm_forward_eval(p, epi, x.data(), gamma.data(), beta.data(), residual,
                                rm_ref.data(), rv_ref.data(), e_ref.data());
    cpu_fast::batchnorm_forward_eval(p, epi, x.data(), gamma.data(), beta.data(), residual,
                                     rm_ref.data(), rv_ref.data(), e.data());
    close(e, e_ref, kBnTol, tag + " forward_eval");

    std::vector<float> dx_ref(static_cast<size_t>(n)), dx(size_t(n), 9.f),
        dr_ref(static_cast<size_t>(n)), dr(static_cast<size_t>(n));
    std::vector<float> dg_ref(size_t(s.C), 0.5f), db_ref(size_t(s.C), -0.5f), dg(dg_ref),
        db(db_ref);
    float* dres_ref = epi == BnEpilogue::AddRelu ? dr_ref.data() : nullptr;
    float* dres = epi == BnEpilogue::AddRelu ? dr.data() : nullptr;
    cpu::batchnorm_backward(p, epi, x.data(), y_ref.data(), dy.data(), gamma.data(), sm_ref.data(),
                            si_ref.data(), dx_ref.data(), dres_ref, dg_ref.data(), db_ref.data());
    cpu_fast::batchnorm_backward(p, epi, x.data(), y_ref.data(), dy.data(), gamma.data(),
                                 sm_ref.data(), si_ref.data(), dx.data(), dres, dg.data(),
                                 db.data());
    close(dx, dx_ref, kBnTol, tag + " backward dx");
    if (dres) close(dr, dr_ref, Tolerance{0, 0}, tag + " backward dresidual");
    // dgamma and dbeta are sums over N*HW values of O(1): relative to their size.
    close(dg, dg_ref, Tolerance{1e-4, 1e-5}, tag + " dgamma (+=)");
    close(db, db_ref, Tolerance{1e-4, 1e-5}, tag + " dbeta (+=)");
}

}  // namespace

TEST_CASE("batchnorm fast backend matches the reference, every epilogue") {
    if (!cpu_fast::available()) return;
    const BnShape shapes[] = {{4, 64, 32 * 108}, {3, 128, 16 * 54}, {2, 512, 4 * 14},
                              {1, 3, 7},         {2, 5, 1},         {5, 9, 17}};
    for (const BnShape& s : shapes)
        for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu})
            check_batchnorm(s, epi);
}

TEST_CASE("maxpool2d fast backend is bit-identical to the reference, ties and NaN included") {
    if (!cpu_fast::available()) return;
    struct S {
        int N, C, H, W, K, stride, pad;
    } shapes[] = {{2, 64, 64, 216, 3, 2, 1},
                  {1, 3, 7, 9, 3, 2, 1},
                  {2, 5, 6, 5, 2, 2, 0},
                  {1, 2, 5, 5, 3, 1, 1}};
    for (const S& s : shapes) {
        const Pool2dParams p = Pool2dParams::make(s.N, s.C, s.H, s.W, s.K, s.stride, s.pad);
        auto x = random_vector(int64_t(s.N) * s.C * s.H * s.W, 7);
        for (size_t i = 0; i < x.size(); i += 5)
            x[i] = 0.25f;  // ties
        x[3] = std::numeric_limits<float>::quiet_NaN();
        const int64_t ny = int64_t(s.N) * s.C * p.OH * p.OW;
        std::vector<float> y_ref(static_cast<size_t>(ny)), y(static_cast<size_t>(ny));
        std::vector<int32_t> a_ref(static_cast<size_t>(ny)), a(static_cast<size_t>(ny));
        cpu::maxpool2d_forward(p, x.data(), y_ref.data(), a_ref.data());
        cpu_fast::maxpool2d_forward(p, x.data(), y.data(), a.data());
        CHECK(a == a_ref);
        size_t differ = 0;
        for (size_t i = 0; i < y.size(); ++i)
            if (!(std::isnan(y[i]) && std::isnan(y_ref[i])) && y[i] != y_ref[i]) ++differ;
        CHECK(differ == 0);
        const auto dy = random_vector(ny, 8);
        std::vector<float> dx_ref(x.size()), dx(x.size(), 3.f);
        cpu::maxpool2d_backward(p, dy.data(), a_ref.data(), dx_ref.data());
        cpu_fast::maxpool2d_backward(p, dy.data(), a_ref.data(), dx.data());
        CHECK(dx == dx_ref);
    }
}

TEST_CASE("adam fast backend matches the reference over three steps (Adam, AdamW)") {
    if (!cpu_fast::available()) return;
    for (AdamMode mode : {AdamMode::Adam, AdamMode::AdamW}) {
        const int64_t n = 100003;  // not a multiple of a vector or of the thread count
        auto w_ref = random_vector(n, 9), w = w_ref;
        std::vector<float> m_ref(static_cast<size_t>(n)), v_ref(static_cast<size_t>(n)),
            m(static_cast<size_t>(n)), v(static_cast<size_t>(n));
        AdamParams p;
        p.mode = mode;
        p.weight_decay = 0.01f;
        for (int step = 1; step <= 3; ++step) {
            const auto g = random_vector(n, 10 + step);
            p.step = step;
            cpu::adam_step(p, n, w_ref.data(), g.data(), m_ref.data(), v_ref.data());
            cpu_fast::adam_step(p, n, w.data(), g.data(), m.data(), v.data());
        }
        close(w, w_ref, kAdamTol, "param");
        close(m, m_ref, kAdamTol, "exp_avg");
        close(v, v_ref, kAdamTol, "exp_avg_sq");
    }
}

TEST_CASE("add fast backend equals the reference") {
    if (!cpu_fast::available()) return;
    const int64_t n = 12345;
    const auto a = random_vector(n, 1), b = random_vector(n, 2);
    std::vector<float> y_ref(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    cpu::add_forward(n, a.data(), b.data(), y_ref.data());
    cpu_fast::add_forward(n, a.data(), b.data(), y.data());
    CHECK(y == y_ref);
}
