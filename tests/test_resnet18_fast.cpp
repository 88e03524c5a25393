// ResNet18 on the fast CPU backend against the same model on the reference twins (model level):
// logits, loss and every parameter gradient of a training-mode pass, a few Adam steps, the
// eval-mode logits (batch norm folded into the convolutions on the fast side, conv + BN on the
// reference side), and the inference-only model (its own memory plan, sized to the batch).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/error.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr int kG = 5, kH = 64, kW = 96;  // a small input keeps the reference side quick
// Logits of the whole network: Winograd and summation order differ from the twins'; relative to
// the largest logit (measured: 5e-6 train mode, 4e-6 eval mode with folded BN).
constexpr double kLogitRelToMax = 5e-5;
// Per-tensor gradient agreement: |g_fast - g_ref| / |g_ref| over the whole tensor (L2; measured
// worst tensor 1.7e-5).
constexpr double kGradRelNorm = 2e-4;
// Loss after each of 4 Adam steps (measured drift 2e-4 by the fourth: Adam's first steps move
// every weight by ~lr whatever the gradient's size, so tiny gradient differences show).
constexpr double kLossRel = 1e-3;

ResNet18Config config(CpuBackend b, int max_batch = 3, bool training = true) {
    ResNet18Config c;
    c.num_genres = kG;
    c.max_batch = max_batch;
    c.height = kH;
    c.width = kW;
    c.cpu_backend = b;
    c.training = training;
    return c;
}

Tensor input(int N, uint64_t salt = 0) {
    std::vector<float> v = pattern_input(N, kH, kW);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] += 0.01f * float((i * 2654435761u + salt) % 97) / 97.f;
    return Tensor::from_vector({N, 1, kH, kW}, v, Device::CPU);
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v)
        m = std::max(m, double(std::fabs(x)));
    return m;
}

void logits_close(const std::vector<float>& got, const std::vector<float>& ref, const char* what) {
    const Tolerance tol{kLogitRelToMax * std::max(1e-3, max_abs(ref)), 0};
    const auto c = gnet::test::compare_arrays(got, ref, tol);
    INFO(what << ": " << c.report);
    CHECK(c.ok);
}

bool fast_available() {
    return effective_cpu_backend(CpuBackend::Fast) == CpuBackend::Fast;
}

}  // namespace

TEST_CASE("ResNet18 fast backend: forward, loss and every gradient match the reference") {
    if (!fast_available()) {
        MESSAGE("skipped: this CPU has no AVX2+FMA, so the fast backend is the reference");
        return;
    }
    ResNet18 ref(config(CpuBackend::Reference), Device::CPU);
    ResNet18 fast(config(CpuBackend::Fast), Device::CPU);
    CHECK(ref.cpu_backend() == CpuBackend::Reference);
    CHECK(fast.cpu_backend() == CpuBackend::Fast);
    const Tensor x = input(3);
    std::vector<float> dl(3 * kG);
    for (size_t i = 0; i < dl.size(); ++i)
        dl[i] = 0.1f * float(int(i % 7) - 3);
    const Tensor dlogits = Tensor::from_vector({3, kG}, dl, Device::CPU);
    for (ResNet18* m : {&ref, &fast}) {
        m->set_mode(Mode::Train);
        m->zero_grad();
        m->forward(x);
        m->backward(dlogits);
    }
    logits_close(fast.logits().to_host(), ref.logits().to_host(), "train-mode logits");
    const auto gr = ref.gradients(), gf = fast.gradients();
    REQUIRE(gr.size() == gf.size());
    for (size_t t = 0; t < gr.size(); ++t) {
        const std::vector<float> a = gf[t].tensor.to_host(), b = gr[t].tensor.to_host();
        double diff = 0, norm = 0;
        for (size_t i = 0; i < a.size(); ++i) {
            diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
            norm += double(b[i]) * b[i];
        }
        CAPTURE(gr[t].name);
        CHECK(std::sqrt(diff) <= kGradRelNorm * std::sqrt(norm) + 1e-12);
    }
    // Eval mode: folded BN (fast) against conv + BN (reference), running statistics included.
    ref.set_mode(Mode::Eval);
    fast.set_mode(Mode::Eval);
    logits_close(fast.forward(x).to_host(), ref.forward(x).to_host(), "eval-mode logits");
}

TEST_CASE("ResNet18 fast backend: a few Adam steps follow the reference's loss curve") {
    if (!fast_available()) return;
    ResNet18 ref(config(CpuBackend::Reference), Device::CPU);
    ResNet18 fast(config(CpuBackend::Fast), Device::CPU);
    const Tensor targets = Tensor::from_vector({3, kG}, pattern_targets(3, kG), Device::CPU);
    for (int step = 0; step < 4; ++step) {
        const Tensor x = input(3, uint64_t(step));
        const float lr = ref.train_step(x, targets, nullptr, AdamParams{});
        const float lf = fast.train_step(x, targets, nullptr, AdamParams{});
        CAPTURE(step);
        CHECK(std::fabs(lf - lr) <= kLossRel * std::fabs(lr));
    }
}

TEST_CASE("ResNet18 inference-only model: same logits, own memory plan sized to the batch") {
    for (CpuBackend b : {CpuBackend::Reference, CpuBackend::Fast}) {
        CAPTURE(cpu_backend_name(b));
        ResNet18 train(config(b, 4), Device::CPU);
        train.set_mode(Mode::Eval);
        ResNet18Config ic = config(b, 4, false);
        ic.init_seed = std::nullopt;
        ResNet18 infer(ic, Device::CPU);
        infer.load_state_dict(train.state_dict(), "test");
        CHECK(infer.activation_arena().numel() == 0);  // no training activations
        CHECK(infer.gradient_arena().numel() == 0);
        const Tensor x = input(4);
        const std::vector<float> all = train.forward(x).to_host();
        CHECK(infer.forward(x).to_host() == all);  // the same ops on other buffers: bit for bit
        // Smaller and then larger batches than the first: each sample's logits do not depend on
        // the batch it is in (eval mode) nor on the plan having grown.
        ResNet18 grow(ic, Device::CPU);
        grow.load_state_dict(train.state_dict(), "test");
        for (int n : {1, 3, 2, 4}) {
            std::vector<float> xs = x.to_host();
            xs.resize(size_t(n) * kH * kW);
            const std::vector<float> got =
                grow.forward(Tensor::from_vector({n, 1, kH, kW}, xs, Device::CPU)).to_host();
            logits_close(got, std::vector<float>(all.begin(), all.begin() + n * kG),
                         "grown inference plan");
        }
        CHECK_THROWS_WITH_AS(
            infer.train_step(x, Tensor::from_vector({4, kG}, pattern_targets(4, kG), Device::CPU),
                             nullptr, AdamParams{}),
            doctest::Contains("inference only"), Error);
    }
}
