// BatchNorm2d CPU twin: finite differences (all epilogues), known answers, running statistics,
// evaluation mode, and PyTorch's answers (tests/fixtures/ops, made by make_ops_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "audio/npy.h"
#include "kernels/add.h"
#include "kernels/batchnorm.h"
#include "kernels/error.h"
#include "kernels/relu.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// Central differences of a float twin (h = 5e-3): noise ~1e-4, so a wrong formula stands out.
constexpr Tolerance kFiniteDiff{2e-3, 1e-2};
// Float twin vs double formulas / PyTorch's float32 results.
constexpr Tolerance kFloat{1e-5, 1e-5};
constexpr Tolerance kTorch{2e-5, 1e-4};
constexpr double kStep = 5e-3;
constexpr double kKinkMargin = 0.05;  // every pre-ReLU value at least this far from 0

std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.f, float shift = 0.f) {
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<float> v(n);
    for (float& x : v)
        x = d(rng) * scale + shift;
    return v;
}

const char* name_of(BnEpilogue e) {
    return e == BnEpilogue::None ? "none" : e == BnEpilogue::Relu ? "relu" : "addrelu";
}

struct BnCase {
    BatchNormParams p;
    std::vector<float> x, gamma, beta, residual, w;
};

// The loss sum(y * w) through a training-mode forward (running stats on scratch copies).
double bn_loss(const BnCase& k, BnEpilogue epi, const std::vector<float>& x,
               const std::vector<float>& gamma, const std::vector<float>& beta,
               const std::vector<float>& residual) {
    const int C = k.p.C;
    std::vector<float> y(x.size()), rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
    cpu::batchnorm_forward_train(k.p, epi, x.data(), gamma.data(), beta.data(),
                                 epi == BnEpilogue::AddRelu ? residual.data() : nullptr, y.data(),
                                 rm.data(), rv.data(), sm.data(), si.data());
    double s = 0.0;
    for (size_t i = 0; i < y.size(); ++i)
        s += double(y[i]) * k.w[i];
    return s;
}

// Pre-activation values bn(x) (+ residual) of the case, to keep them away from the ReLU kink.
double min_abs_preactivation(const BnCase& k) {
    const int C = k.p.C;
    std::vector<float> z(k.x.size()), rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
    cpu::batchnorm_forward_train(k.p, BnEpilogue::None, k.x.data(), k.gamma.data(), k.beta.data(),
                                 nullptr, z.data(), rm.data(), rv.data(), sm.data(), si.data());
    double lo = 1e30;
    for (size_t i = 0; i < z.size(); ++i) {
        lo = std::min(lo, std::fabs(double(z[i])));
        lo = std::min(lo, std::fabs(double(z[i]) + k.residual[i]));
    }
    return lo;
}

BnCase make_case(int N, int C, int HW) {
    for (unsigned seed = 1;; ++seed) {
        std::mt19937 rng(seed);
        BnCase k;
        k.p = BatchNormParams{N, C, HW};
        const size_t n = size_t(N) * C * HW;
        k.x = randn(n, rng, 1.5f, 0.3f);
        k.gamma = randn(C, rng, 0.3f, 1.f);
        k.beta = randn(C, rng, 0.3f);
        k.residual = randn(n, rng);
        k.w = randn(n, rng);
        if (min_abs_preactivation(k) > kKinkMargin) return k;
        REQUIRE(seed < 100000);
    }
}

template <class F>
std::vector<double> central_diff(std::vector<float> v, F loss_of) {
    std::vector<double> g(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        const float keep = v[i];
        v[i] = float(keep + kStep);
        const double up = loss_of(v);
        v[i] = float(keep - kStep);
        const double down = loss_of(v);
        v[i] = keep;
        g[i] = (up - down) / (2 * kStep);
    }
    return g;
}

}  // namespace

TEST_CASE("batchnorm backward matches central differences for every epilogue") {
    const BnCase k = make_case(2, 3, 3);
    const int C = k.p.C;
    for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu}) {
        CAPTURE(name_of(epi));
        const bool add = epi == BnEpilogue::AddRelu;
        std::vector<float> y(k.x.size()), rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
        cpu::batchnorm_forward_train(k.p, epi, k.x.data(), k.gamma.data(), k.beta.data(),
                                     add ? k.residual.data() : nullptr, y.data(), rm.data(),
                                     rv.data(), sm.data(), si.data());
        std::vector<float> dx(k.x.size()), dres(add ? k.x.size() : 0);
        std::vector<float> dgamma(C, 0.f), dbeta(C, 0.f);
        cpu::batchnorm_backward(k.p, epi, k.x.data(), y.data(), k.w.data(), k.gamma.data(),
                                sm.data(), si.data(), dx.data(), add ? dres.data() : nullptr,
                                dgamma.data(), dbeta.data());

        auto num_dx = central_diff(k.x, [&](const std::vector<float>& v) {
            return bn_loss(k, epi, v, k.gamma, k.beta, k.residual);
        });
        auto num_dgamma = central_diff(k.gamma, [&](const std::vector<float>& v) {
            return bn_loss(k, epi, k.x, v, k.beta, k.residual);
        });
        auto num_dbeta = central_diff(k.beta, [&](const std::vector<float>& v) {
            return bn_loss(k, epi, k.x, k.gamma, v, k.residual);
        });
        GNET_CHECK_CLOSE(dx, num_dx, kFiniteDiff);
        GNET_CHECK_CLOSE(dgamma, num_dgamma, kFiniteDiff);
        GNET_CHECK_CLOSE(dbeta, num_dbeta, kFiniteDiff);
        if (add) {
            auto num_dres = central_diff(k.residual, [&](const std::vector<float>& v) {
                return bn_loss(k, epi, k.x, k.gamma, k.beta, v);
            });
            GNET_CHECK_CLOSE(dres, num_dres, kFiniteDiff);
        }
    }
}

TEST_CASE("batchnorm parameter gradients accumulate, activation gradients overwrite") {
    const BnCase k = make_case(2, 2, 4);
    const int C = k.p.C;
    std::vector<float> y(k.x.size()), rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
    cpu::batchnorm_forward_train(k.p, BnEpilogue::Relu, k.x.data(), k.gamma.data(), k.beta.data(),
                                 nullptr, y.data(), rm.data(), rv.data(), sm.data(), si.data());
    std::vector<float> dx1(k.x.size(), 0.f), dx2(k.x.size(), 123.f);
    std::vector<float> dg1(C, 0.f), db1(C, 0.f), dg2(C, 0.5f), db2(C, -2.f);
    cpu::batchnorm_backward(k.p, BnEpilogue::Relu, k.x.data(), y.data(), k.w.data(), k.gamma.data(),
                            sm.data(), si.data(), dx1.data(), nullptr, dg1.data(), db1.data());
    cpu::batchnorm_backward(k.p, BnEpilogue::Relu, k.x.data(), y.data(), k.w.data(), k.gamma.data(),
                            sm.data(), si.data(), dx2.data(), nullptr, dg2.data(), db2.data());
    CHECK(dx1 == dx2);
    for (int c = 0; c < C; ++c) {
        CHECK(dg2[c] == doctest::Approx(dg1[c] + 0.5f).epsilon(1e-6));
        CHECK(db2[c] == doctest::Approx(db1[c] - 2.f).epsilon(1e-6));
    }
}

TEST_CASE("batchnorm training output has mean 0 and variance 1 per channel; running stats") {
    std::mt19937 rng(7);
    const BatchNormParams p{3, 4, 11};
    const int C = p.C;
    const int64_t M = int64_t(p.N) * p.HW;
    std::vector<float> x = randn(size_t(p.N) * C * p.HW, rng, 3.f, 5.f);
    std::vector<float> gamma(C, 1.f), beta(C, 0.f), y(x.size());
    std::vector<float> rm = {0.1f, -0.2f, 0.3f, 0.f}, rv = {1.f, 2.f, 0.5f, 1.5f};
    const std::vector<float> rm0 = rm, rv0 = rv;
    std::vector<float> sm(C), si(C);
    cpu::batchnorm_forward_train(p, BnEpilogue::None, x.data(), gamma.data(), beta.data(), nullptr,
                                 y.data(), rm.data(), rv.data(), sm.data(), si.data());
    for (int c = 0; c < C; ++c) {
        double s = 0, s2 = 0, xs = 0, xs2 = 0;
        for (int n = 0; n < p.N; ++n)
            for (int i = 0; i < p.HW; ++i) {
                const size_t at = (size_t(n) * C + c) * p.HW + i;
                s += y[at];
                s2 += double(y[at]) * y[at];
                xs += x[at];
            }
        const double xmean = xs / M;
        for (int n = 0; n < p.N; ++n)
            for (int i = 0; i < p.HW; ++i) {
                const double d = x[(size_t(n) * C + c) * p.HW + i] - xmean;
                xs2 += d * d;
            }
        const double var_biased = xs2 / M, var_unbiased = xs2 / (M - 1);
        CHECK(std::fabs(s / M) < 1e-6);
        CHECK(s2 / M == doctest::Approx(var_biased / (var_biased + 1e-5)).epsilon(1e-5));
        CHECK(s2 / M == doctest::Approx(1.0).epsilon(1e-4));
        CHECK(sm[c] == doctest::Approx(xmean).epsilon(1e-6));
        CHECK(si[c] == doctest::Approx(1.0 / std::sqrt(var_biased + 1e-5)).epsilon(1e-6));
        CHECK(rm[c] == doctest::Approx(0.9 * rm0[c] + 0.1 * xmean).epsilon(1e-6));
        CHECK(rv[c] == doctest::Approx(0.9 * rv0[c] + 0.1 * var_unbiased).epsilon(1e-6));
    }
}

TEST_CASE("batchnorm evaluation uses the running statistics and leaves them alone") {
    std::mt19937 rng(8);
    const BatchNormParams p{2, 3, 5};
    const int C = p.C;
    std::vector<float> x = randn(size_t(p.N) * C * p.HW, rng, 2.f);
    std::vector<float> res = randn(x.size(), rng);
    std::vector<float> gamma = {1.5f, 0.5f, -1.f}, beta = {0.1f, 0.2f, -0.3f};
    const std::vector<float> rm = {0.5f, -1.f, 2.f}, rv = {4.f, 0.25f, 1.f};
    for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu}) {
        CAPTURE(name_of(epi));
        const bool add = epi == BnEpilogue::AddRelu;
        std::vector<float> y(x.size()), want(x.size());
        cpu::batchnorm_forward_eval(p, epi, x.data(), gamma.data(), beta.data(),
                                    add ? res.data() : nullptr, rm.data(), rv.data(), y.data());
        for (int n = 0; n < p.N; ++n)
            for (int c = 0; c < C; ++c)
                for (int i = 0; i < p.HW; ++i) {
                    const size_t at = (size_t(n) * C + c) * p.HW + i;
                    double v =
                        (x[at] - rm[c]) / std::sqrt(double(rv[c]) + 1e-5) * gamma[c] + beta[c];
                    if (add) v += res[at];
                    if (epi != BnEpilogue::None) v = std::max(v, 0.0);
                    want[at] = float(v);
                }
        GNET_CHECK_CLOSE(y, want, kFloat);
    }
}

TEST_CASE("batchnorm fused epilogues equal bn, then add and relu") {
    std::mt19937 rng(9);
    const BatchNormParams p{2, 5, 7};
    const int C = p.C;
    const size_t n = size_t(p.N) * C * p.HW;
    std::vector<float> x = randn(n, rng), res = randn(n, rng), gamma = randn(C, rng, 0.5f, 1.f),
                       beta = randn(C, rng, 0.5f);
    auto train = [&](BnEpilogue epi, const float* r) {
        std::vector<float> y(n), rm(C, 0.f), rv(C, 1.f), sm(C), si(C);
        cpu::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(), r, y.data(),
                                     rm.data(), rv.data(), sm.data(), si.data());
        return y;
    };
    std::vector<float> plain = train(BnEpilogue::None, nullptr);
    std::vector<float> relu(n), sum(n), addrelu(n);
    cpu::relu_forward(int64_t(n), plain.data(), relu.data());
    cpu::add_forward(int64_t(n), plain.data(), res.data(), sum.data());
    cpu::relu_forward(int64_t(n), sum.data(), addrelu.data());
    GNET_CHECK_CLOSE(train(BnEpilogue::Relu, nullptr), relu, kFloat);
    GNET_CHECK_CLOSE(train(BnEpilogue::AddRelu, res.data()), addrelu, kFloat);
}

TEST_CASE("batchnorm rejects bad arguments") {
    std::vector<float> v(8, 1.f), c(2, 1.f), out(8), s(2);
    const BatchNormParams one{1, 2, 1};  // one value per channel: no batch variance
    CHECK_THROWS_AS(
        cpu::batchnorm_forward_train(one, BnEpilogue::None, v.data(), c.data(), c.data(), nullptr,
                                     out.data(), s.data(), s.data(), s.data(), s.data()),
        Error);
    const BatchNormParams p{2, 2, 2};
    CHECK_THROWS_AS(
        cpu::batchnorm_forward_train(p, BnEpilogue::AddRelu, v.data(), c.data(), c.data(), nullptr,
                                     out.data(), s.data(), s.data(), s.data(), s.data()),
        Error);
    CHECK_THROWS_AS(
        cpu::batchnorm_forward_eval(BatchNormParams{0, 2, 2}, BnEpilogue::None, v.data(), c.data(),
                                    c.data(), nullptr, c.data(), c.data(), out.data()),
        Error);
}

TEST_CASE("batchnorm matches PyTorch (BatchNorm2d train forward, backward, running stats)") {
    const std::string dir = test::fixtures_dir() + "/ops/";
    const int N = 2, C = 3, HW = 20;
    const std::vector<int64_t> shape = {N, C, 4, 5}, ch = {C};
    auto x = npy_read_f32(dir + "bn_x.npy", shape);
    auto gamma = npy_read_f32(dir + "bn_gamma.npy", ch);
    auto beta = npy_read_f32(dir + "bn_beta.npy", ch);
    auto res = npy_read_f32(dir + "bn_residual.npy", shape);
    auto dy = npy_read_f32(dir + "bn_dy.npy", shape);
    const BatchNormParams p{N, C, HW};
    for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu}) {
        const std::string e = name_of(epi);
        CAPTURE(e);
        const bool add = epi == BnEpilogue::AddRelu;
        auto rm = npy_read_f32(dir + "bn_running_mean0.npy", ch);
        auto rv = npy_read_f32(dir + "bn_running_var0.npy", ch);
        std::vector<float> y(x.size()), sm(C), si(C);
        cpu::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(),
                                     add ? res.data() : nullptr, y.data(), rm.data(), rv.data(),
                                     sm.data(), si.data());
        GNET_CHECK_CLOSE(y, npy_read_f32(dir + "bn_" + e + "_y.npy", shape), kTorch);
        if (epi == BnEpilogue::None) {
            GNET_CHECK_CLOSE(rm, npy_read_f32(dir + "bn_running_mean1.npy", ch), kTorch);
            GNET_CHECK_CLOSE(rv, npy_read_f32(dir + "bn_running_var1.npy", ch), kTorch);
            GNET_CHECK_CLOSE(sm, npy_read_f32(dir + "bn_save_mean.npy", ch), kTorch);
            GNET_CHECK_CLOSE(si, npy_read_f32(dir + "bn_save_invstd.npy", ch), kTorch);
        }
        std::vector<float> dx(x.size()), dres(add ? x.size() : 0), dg(C, 0.f), db(C, 0.f);
        cpu::batchnorm_backward(p, epi, x.data(), y.data(), dy.data(), gamma.data(), sm.data(),
                                si.data(), dx.data(), add ? dres.data() : nullptr, dg.data(),
                                db.data());
        GNET_CHECK_CLOSE(dx, npy_read_f32(dir + "bn_" + e + "_dx.npy", shape), kTorch);
        GNET_CHECK_CLOSE(dg, npy_read_f32(dir + "bn_" + e + "_dgamma.npy", ch), kTorch);
        GNET_CHECK_CLOSE(db, npy_read_f32(dir + "bn_" + e + "_dbeta.npy", ch), kTorch);
        if (add)
            GNET_CHECK_CLOSE(dres, npy_read_f32(dir + "bn_addrelu_dresidual.npy", shape), kTorch);
    }
}

TEST_CASE("BN + ReLU lets a NaN input through instead of hiding it") {
    BatchNormParams p{1, 1, 4};
    std::vector<float> x = {1.f, 2.f, std::numeric_limits<float>::quiet_NaN(), 4.f}, y(4);
    std::vector<float> gamma = {1.f}, beta = {0.f}, rm = {0.f}, rv = {1.f}, sm(1), si(1);
    cpu::batchnorm_forward_train(p, BnEpilogue::Relu, x.data(), gamma.data(), beta.data(), nullptr,
                                 y.data(), rm.data(), rv.data(), sm.data(), si.data());
    bool any_nan = false;
    for (float v : y)
        any_nan = any_nan || std::isnan(v);
    CHECK(any_nan);
}
