// BCE-with-logits CPU twin: known answers (BCE(0) = ln 2, pos_weight by hand), stability at large
// logits, the gradient against central differences, and PyTorch's BCEWithLogitsLoss.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "audio/npy.h"
#include "kernels/bce.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {
constexpr Tolerance kFiniteDiff{1e-5, 1e-3};
constexpr Tolerance kTorch{1e-6, 1e-5};
}  // namespace

TEST_CASE("BCE of zero logits is ln 2 whatever the targets") {
    const std::vector<float> z(6, 0.f), t = {0, 1, 1, 0, 0.5f, 1};
    float loss = -1.f;
    std::vector<float> dz(6);
    cpu::bce_logits_forward_backward(2, 3, z.data(), t.data(), nullptr, &loss, dz.data());
    CHECK(loss == doctest::Approx(std::log(2.0)).epsilon(1e-7));
    for (int i = 0; i < 6; ++i)
        CHECK(dz[i] == doctest::Approx((0.5 - t[i]) / 6.0).epsilon(1e-7));
}

TEST_CASE("BCE pos_weight scales the positive term, by hand") {
    // z = 0, t = [1, 0], pw = [3, 5]: l = [3 ln2, ln2], mean 2 ln2;
    // dl/dz = (1 - t) - lw * sigmoid(-z) = [-1.5, 0.5], divided by the count 2.
    const std::vector<float> z = {0, 0}, t = {1, 0}, pw = {3, 5};
    float loss = 0.f;
    std::vector<float> dz(2);
    cpu::bce_logits_forward_backward(1, 2, z.data(), t.data(), pw.data(), &loss, dz.data());
    CHECK(loss == doctest::Approx(2 * std::log(2.0)).epsilon(1e-7));
    CHECK(dz[0] == doctest::Approx(-0.75).epsilon(1e-7));
    CHECK(dz[1] == doctest::Approx(0.25).epsilon(1e-7));
    // dlogits may be skipped.
    float loss2 = 0.f;
    cpu::bce_logits_forward_backward(1, 2, z.data(), t.data(), pw.data(), &loss2, nullptr);
    CHECK(loss2 == loss);
}

TEST_CASE("BCE is finite and right at large logits") {
    const std::vector<float> z = {100, -100, 100, -100}, t = {1, 1, 0, 0};
    float loss = 0.f;
    std::vector<float> dz(4);
    cpu::bce_logits_forward_backward(1, 4, z.data(), t.data(), nullptr, &loss, dz.data());
    CHECK(loss == doctest::Approx(200.0 / 4).epsilon(1e-6));  // the two wrong ones cost 100 each
    GNET_CHECK_CLOSE(dz, (std::vector<float>{0.f, -0.25f, 0.25f, 0.f}), (Tolerance{1e-12, 1e-6}));
}

TEST_CASE("BCE gradient matches central differences (with and without pos_weight)") {
    const int N = 3, G = 4;
    std::mt19937 rng(11);
    std::normal_distribution<float> d(0.f, 2.f);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<float> z(N * G), t(N * G), pw = {0.5f, 1.f, 2.f, 7.f};
    for (float& v : z)
        v = d(rng);
    for (float& v : t)
        v = u(rng) < 0.5f ? 1.f : u(rng);  // soft targets too
    for (const float* weights :
         {static_cast<const float*>(nullptr), static_cast<const float*>(pw.data())}) {
        CAPTURE(weights != nullptr);
        float loss;
        std::vector<float> dz(N * G);
        cpu::bce_logits_forward_backward(N, G, z.data(), t.data(), weights, &loss, dz.data());
        std::vector<double> num(N * G);
        const double h = 1e-2;
        for (int i = 0; i < N * G; ++i) {
            std::vector<float> zz = z;
            float up, down;
            zz[i] = float(z[i] + h);
            cpu::bce_logits_forward_backward(N, G, zz.data(), t.data(), weights, &up, nullptr);
            zz[i] = float(z[i] - h);
            cpu::bce_logits_forward_backward(N, G, zz.data(), t.data(), weights, &down, nullptr);
            num[i] = (double(up) - down) / (2 * h);
        }
        GNET_CHECK_CLOSE(dz, num, kFiniteDiff);
    }
}

TEST_CASE("BCE matches PyTorch BCEWithLogitsLoss") {
    const std::string dir = test::fixtures_dir() + "/ops/";
    const int N = 4, G = 5;
    auto z = npy_read_f32(dir + "bce_logits.npy", {N, G});
    auto t = npy_read_f32(dir + "bce_targets.npy", {N, G});
    auto pw = npy_read_f32(dir + "bce_pos_weight.npy", {G});
    float loss;
    std::vector<float> dz(N * G);
    cpu::bce_logits_forward_backward(N, G, z.data(), t.data(), pw.data(), &loss, dz.data());
    GNET_CHECK_CLOSE_N(&loss, npy_read_f32(dir + "bce_loss.npy", {1}).data(), 1, kTorch);
    GNET_CHECK_CLOSE(dz, npy_read_f32(dir + "bce_dlogits.npy", {N, G}), kTorch);
    cpu::bce_logits_forward_backward(N, G, z.data(), t.data(), nullptr, &loss, dz.data());
    GNET_CHECK_CLOSE_N(&loss, npy_read_f32(dir + "bce_nopw_loss.npy", {1}).data(), 1, kTorch);
    GNET_CHECK_CLOSE(dz, npy_read_f32(dir + "bce_nopw_dlogits.npy", {N, G}), kTorch);
}
