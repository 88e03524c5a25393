// ResNet18Bf16 on the GPU (tensor-core kernels) against the same model on the CPU (the
// bf16-faithful twins), from the same initial state: eval- and train-mode logits, every parameter
// gradient of a teacher-forced backward (the GPU model gets the CPU model's saved forward state
// first), and a whole train step's loss. The two run the same bf16 arithmetic with float32 sums in
// different orders, so a value may differ by one bf16 rounding here and there; the comparisons
// allow that, relative to each tensor's size.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "nn/resnet18_bf16.h"
#include "tests/check.h"

using namespace gnet;

namespace {

ResNet18Config config(int batch, int H, int W) {
    ResNet18Config c;
    c.num_genres = 5;
    c.max_batch = batch;
    c.height = H;
    c.width = W;
    c.init_seed = 11;
    c.precision = Precision::Bf16;
    return c;
}

double rms(const std::vector<float>& v) {
    double s = 0;
    for (float e : v)
        s += double(e) * e;
    return std::sqrt(s / double(std::max<size_t>(v.size(), 1)));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb + 1e-300);
}

// |got - ref| / |ref| over the whole tensor (2-norms).
double relative_error(const std::vector<float>& got, const std::vector<float>& ref) {
    double d = 0, r = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        d += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
        r += double(ref[i]) * ref[i];
    }
    return std::sqrt(d / (r + 1e-300));
}

// |got - ref| within `rel` of ref's rms, elementwise, for all but a `outliers` fraction (a ReLU
// mask or max-pool winner decided by one rounding sends a single value elsewhere).
void check_close(const std::vector<float>& got, const std::vector<float>& ref, double rel,
                 double outliers, const std::string& what) {
    CAPTURE(what);
    REQUIRE(got.size() == ref.size());
    const double tol = rel * rms(ref) + 1e-12;
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i)
        if (!(std::fabs(double(got[i]) - ref[i]) <= tol)) ++bad;
    CHECK(double(bad) <= outliers * double(ref.size()));
}

void compare_step(int batch, int H, int W) {
    const ResNet18Config c = config(batch, H, W);
    ResNet18Bf16 gpu_model(c, Device::CUDA), cpu_model(c, Device::CPU);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<float> xs(size_t(batch) * H * W), ts(size_t(batch) * 5), ds(size_t(batch) * 5);
    for (float& e : xs)
        e = u(rng);
    for (float& e : ts)
        e = u(rng) < 0.3f ? 1.f : 0.f;
    for (float& e : ds)
        e = (u(rng) - 0.5f) / float(batch);
    const Tensor x = Tensor::from_vector({batch, 1, H, W}, xs, Device::CPU);
    const Tensor t = Tensor::from_vector({batch, 5}, ts, Device::CPU);
    const Tensor dlogits = Tensor::from_vector({batch, 5}, ds, Device::CPU);

    // Forward in eval mode (fixed statistics): the same arithmetic, close agreement. In train mode
    // a batch norm over few values amplifies a single bf16 rounding, so only the direction of the
    // logits is compared there.
    gpu_model.set_mode(Mode::Eval);
    cpu_model.set_mode(Mode::Eval);
    check_close(gpu_model.forward(x).to_host(), cpu_model.forward(x).to_host(), 0.02, 0.0,
                "eval-mode logits");
    gpu_model.set_mode(Mode::Train);
    cpu_model.set_mode(Mode::Train);
    const std::vector<float> l_gpu = gpu_model.forward(x).to_host();
    const std::vector<float> l_cpu = cpu_model.forward(x).to_host();
    CHECK(cosine(l_gpu, l_cpu) > 0.98);

    // Backward, teacher-forced: the GPU model starts from the CPU model's saved activations, so
    // each layer's backward sees the same inputs and only the kernels differ.
    gpu_model.copy_forward_state_from(cpu_model);
    gpu_model.zero_grad();
    cpu_model.zero_grad();
    gpu_model.backward(dlogits);
    cpu_model.backward(dlogits);
    const auto g_gpu = gpu_model.gradients(), g_cpu = cpu_model.gradients();
    REQUIRE(g_gpu.size() == g_cpu.size());
    // Each bf16 rounding is off by ~2^-9 of its value on average; along the 20-layer backward
    // chain a few percent of the gradient's norm accumulate, most in the layers nearest the
    // input. An error in a kernel (a wrong index, tap or tile) is of the order of the gradient.
    double worst = 0;
    std::string worst_name;
    for (size_t i = 0; i < g_cpu.size(); ++i) {
        const double e = relative_error(g_gpu[i].second, g_cpu[i].second);
        if (e > worst) worst = e, worst_name = g_cpu[i].first;
    }
    MESSAGE("teacher-forced backward at batch " << batch << ": largest relative gradient error "
                                                << worst << " (" << worst_name << ")");
    CHECK(worst < 0.05);

    AdamParams adam;
    // A whole train step on each, from the same state.
    ResNet18Bf16 a(c, Device::CUDA), b(c, Device::CPU);
    const float loss_gpu = a.train_step(x, t, nullptr, adam);
    const float loss_cpu = b.train_step(x, t, nullptr, adam);
    CHECK(loss_gpu == doctest::Approx(loss_cpu).epsilon(0.01));
}

}  // namespace

TEST_CASE("ResNet18Bf16 GPU train step matches the bf16 CPU twin at batch 2" *
          doctest::test_suite("model")) {
    compare_step(2, 32, 48);
}

TEST_CASE("ResNet18Bf16 GPU train step matches the bf16 CPU twin at batch 32" *
          doctest::test_suite("slow")) {
    compare_step(32, 32, 64);
}
