// Adam / AdamW CPU twin: one step by hand, three steps against a double-precision loop, the
// exact relation between Adam's L2 decay, AdamW's decoupled decay and plain Adam, and PyTorch's
// torch.optim.Adam / AdamW (weight_decay 0.01) over three steps.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "audio/npy.h"
#include "kernels/adam.h"
#include "kernels/error.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr Tolerance kDouble{1e-7, 1e-5};  // float twin vs the same maths in double
constexpr Tolerance kTorch{1e-7, 1e-5};

std::vector<float> randn(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (float& x : v)
        x = d(rng);
    return v;
}

}  // namespace

TEST_CASE("adam one step by hand") {
    // m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25; mhat = 0.5, vhat = 0.25;
    // param = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    AdamParams p;
    p.lr = 0.1f;
    std::vector<float> w = {1.f}, g = {0.5f}, m = {0.f}, v = {0.f};
    cpu::adam_step(p, 1, w.data(), g.data(), m.data(), v.data());
    CHECK(m[0] == doctest::Approx(0.05).epsilon(1e-6));
    CHECK(v[0] == doctest::Approx(0.00025).epsilon(1e-6));
    CHECK(w[0] == doctest::Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-7));
    // The first step moves every parameter by about lr, whatever the gradient's size.
    std::vector<float> w2 = {0.f, 0.f}, g2 = {1e-3f, -50.f}, m2 = {0, 0}, v2 = {0, 0};
    cpu::adam_step(p, 2, w2.data(), g2.data(), m2.data(), v2.data());
    CHECK(w2[0] == doctest::Approx(-0.1).epsilon(1e-5));
    CHECK(w2[1] == doctest::Approx(0.1).epsilon(1e-5));
}

TEST_CASE("adam three steps match a double-precision loop (Adam and AdamW, with decay)") {
    const int n = 50;
    for (AdamMode mode : {AdamMode::Adam, AdamMode::AdamW}) {
        CAPTURE(mode == AdamMode::AdamW);
        AdamParams p;
        p.lr = 3e-3f;
        p.weight_decay = 0.05f;
        p.mode = mode;
        std::vector<float> w = randn(n, 1), m(n, 0.f), v(n, 0.f);
        std::vector<double> wd(w.begin(), w.end()), md(n, 0.0), vd(n, 0.0);
        for (int t = 1; t <= 3; ++t) {
            const std::vector<float> g = randn(n, 100 + t);
            p.step = t;
            cpu::adam_step(p, n, w.data(), g.data(), m.data(), v.data());
            const double lr = p.lr, b1 = p.beta1, b2 = p.beta2, eps = p.eps, dec = p.weight_decay;
            for (int i = 0; i < n; ++i) {
                double gi = g[i];
                if (mode == AdamMode::AdamW)
                    wd[i] *= 1.0 - lr * dec;
                else
                    gi += dec * wd[i];
                md[i] = b1 * md[i] + (1 - b1) * gi;
                vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
                const double mhat = md[i] / (1 - std::pow(b1, t));
                const double vhat = vd[i] / (1 - std::pow(b2, t));
                wd[i] -= lr * mhat / (std::sqrt(vhat) + eps);
            }
        }
        GNET_CHECK_CLOSE(w, wd, kDouble);
        GNET_CHECK_CLOSE(m, md, kDouble);
        GNET_CHECK_CLOSE(v, vd, kDouble);
    }
}

TEST_CASE("adamw is plain adam on the decayed parameter; adam's decay is an L2 gradient term") {
    const int n = 33;
    const std::vector<float> w0 = randn(n, 2), g = randn(n, 3);
    const std::vector<float> m0 = randn(n, 4);
    std::vector<float> v0 = randn(n, 5);
    for (float& x : v0)
        x = x * x;
    AdamParams plain;
    plain.lr = 0.01f;
    plain.step = 4;
    AdamParams decoupled = plain, l2 = plain;
    decoupled.mode = AdamMode::AdamW;
    decoupled.weight_decay = l2.weight_decay = 0.1f;

    // AdamW step == plain step from param * (1 - lr * wd): bit for bit.
    std::vector<float> wa = w0, ma = m0, va = v0;
    cpu::adam_step(decoupled, n, wa.data(), g.data(), ma.data(), va.data());
    const float factor = float(1.0 - double(plain.lr) * 0.1);
    std::vector<float> wb(n), mb = m0, vb = v0;
    for (int i = 0; i < n; ++i)
        wb[i] = w0[i] * factor;
    cpu::adam_step(plain, n, wb.data(), g.data(), mb.data(), vb.data());
    CHECK(wa == wb);
    CHECK(ma == mb);
    CHECK(va == vb);

    // Adam step with decay == plain step with grad + wd * param: bit for bit.
    std::vector<float> wc = w0, mc = m0, vc = v0;
    cpu::adam_step(l2, n, wc.data(), g.data(), mc.data(), vc.data());
    std::vector<float> g2(n), wd = w0, md = m0, vd = v0;
    for (int i = 0; i < n; ++i)
        g2[i] = g[i] + 0.1f * w0[i];
    cpu::adam_step(plain, n, wd.data(), g2.data(), md.data(), vd.data());
    CHECK(wc == wd);
    CHECK(mc == md);
    // ... and the two decays really differ.
    CHECK(wa != wc);
}

TEST_CASE("adam rejects a step below 1 and bad betas") {
    std::vector<float> w(1), g(1), m(1), v(1);
    AdamParams p;
    p.step = 0;
    CHECK_THROWS_AS(cpu::adam_step(p, 1, w.data(), g.data(), m.data(), v.data()), Error);
    p.step = 1;
    p.beta2 = 1.f;
    CHECK_THROWS_AS(cpu::adam_step(p, 1, w.data(), g.data(), m.data(), v.data()), Error);
}

TEST_CASE("adam and adamw match torch.optim over three steps") {
    const std::string dir = test::fixtures_dir() + "/ops/";
    const int n = 37, steps = 3;
    const auto p0 = npy_read_f32(dir + "adam_param0.npy", {n});
    const auto grads = npy_read_f32(dir + "adam_grads.npy", {steps, n});
    for (AdamMode mode : {AdamMode::Adam, AdamMode::AdamW}) {
        const bool w = mode == AdamMode::AdamW;
        CAPTURE(w);
        const auto want = npy_read_f32(dir + (w ? "adamw" : "adam") + "_params.npy", {steps, n});
        AdamParams p;
        p.lr = 1e-2f;
        p.weight_decay = 0.01f;
        p.mode = mode;
        std::vector<float> param = p0, m(n, 0.f), v(n, 0.f);
        for (int s = 0; s < steps; ++s) {
            p.step = s + 1;
            cpu::adam_step(p, n, param.data(), grads.data() + s * n, m.data(), v.data());
            GNET_CHECK_CLOSE_N(param.data(), want.data() + s * n, n, kTorch);
        }
    }
}
