// ResNet18 on the GPU against the CPU twin on [N, 1, 128, 431]:
//  - the forward: every saved activation (each conv and BN output, BN batch statistics, the
//    max-pool argmax, pooled features, logits) and the loss;
//  - the backward with the GPU's forward state given to the CPU model ("teacher forcing"), so both
//    backward passes take the same ReLU masks and max-pool routes: a gradient can then be held
//    element by element to a tight tolerance. (Without it, a pre-activation within rounding of
//    zero, or a near tie in a pool window, sends a gradient down a different path in each twin,
//    and only a loose tolerance relative to each tensor's largest value would pass; an error
//    confined to small elements would slip through that.)
//  - Adam on the GPU's gradients, the running statistics, num_batches_tracked.
// At batch 2 (every configuration test), and in the configuration users get: batch 32 (the wide
// conv tiles, the split-K counts and the multi-stage batch norm of a real step) followed by a
// partial last batch of 7 and an eval forward at 7. Also: a train step allocates no device
// memory and is deterministic; a checkpoint written from the GPU model loads on the CPU.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/bce.h"
#include "kernels/cuda_check.h"
#include "nn/checkpoint.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr int kG = 10, kH = 128, kW = 431;

// Per element, |gpu - cpu| <= tol * (rms(cpu tensor) + |cpu|): relative for large elements and,
// for small ones, relative to the tensor's typical (RMS) size rather than to its largest element.
// The twins are float32 with different summation orders (and fused multiply-adds on the GPU);
// forward values pass through up to 20 conv + BN layers, gradients back through as many.
constexpr double kForwardTol = 5e-4;
constexpr double kGradTol = 3e-4;
constexpr double kAdamTol = 1e-6;  // the same update from the same gradients
constexpr double kLossTol = 1e-5;

ResNet18Config config(int max_batch) {
    ResNet18Config c;
    c.num_genres = kG;
    c.max_batch = max_batch;
    c.height = kH;
    c.width = kW;
    c.init_seed = std::nullopt;
    return c;
}

struct Batch {
    Tensor x, targets, pos_weight;
};
Batch batch(int N, Device d) {
    return {Tensor::from_vector({N, 1, kH, kW}, pattern_input(N, kH, kW), d),
            Tensor::from_vector({N, kG}, pattern_targets(N, kG), d),
            Tensor::from_vector({kG}, pattern_pos_weight(kG), d)};
}

double rms(const std::vector<float>& v) {
    double s = 0;
    for (float x : v)
        s += double(x) * x;
    return v.empty() ? 0.0 : std::sqrt(s / double(v.size()));
}

void check_tensor(const std::vector<float>& got, const std::vector<float>& ref, double tol,
                  const std::string& what) {
    INFO(what);
    const double scale = std::max(rms(ref), 1e-30);
    GNET_CHECK_CLOSE(got, ref, (Tolerance{tol * scale, tol}));
}

int32_t index_at(const std::vector<float>& v, size_t i) {
    int32_t r;
    std::memcpy(&r, &v[i], 4);
    return r;
}

// Every saved activation of the last forward of both models. The argmax must agree except at
// near ties: where they differ, the pool input must hold the same value (within tolerance) at
// both chosen positions.
void check_forward_state(const ResNet18& gpu, const ResNet18& cpu) {
    const auto g = gpu.saved_activations(), c = cpu.saved_activations();
    REQUIRE(g.size() == c.size());
    std::vector<float> pool_in;
    for (size_t i = 0; i < g.size(); ++i) {
        REQUIRE(g[i].name == c[i].name);
        const std::vector<float> gv = g[i].tensor.to_host(), cv = c[i].tensor.to_host();
        if (g[i].name == "bn1.out") pool_in = cv;
        if (g[i].name != "maxpool.argmax") {
            check_tensor(gv, cv, kForwardTol, "forward " + g[i].name);
            continue;
        }
        REQUIRE(pool_in.size() > 0);
        const double scale = rms(pool_in);
        const int64_t plane_out = g[i].tensor.dim(2) * g[i].tensor.dim(3);
        const int64_t plane_in =
            int64_t(pool_in.size()) / (g[i].tensor.dim(0) * g[i].tensor.dim(1));
        size_t ties = 0, wrong = 0;
        for (size_t k = 0; k < gv.size(); ++k) {
            const int32_t a = index_at(gv, k), b = index_at(cv, k);
            if (a == b) continue;
            const int64_t base = int64_t(k) / plane_out * plane_in;
            const bool in_range = a >= 0 && a < plane_in;
            if (in_range && std::fabs(pool_in[size_t(base + a)] - pool_in[size_t(base + b)]) <=
                                kForwardTol * (scale + std::fabs(pool_in[size_t(base + b)])))
                ++ties;
            else
                ++wrong;
        }
        CAPTURE(ties);
        CHECK(wrong == 0);
    }
}

// Gives the CPU model the GPU model's forward state, runs its backward on the GPU's dlogits and
// compares every parameter gradient.
void check_teacher_forced_backward(ResNet18& gpu, ResNet18& cpu, const Tensor& gpu_dlogits) {
    const auto g = gpu.saved_activations();
    auto c = cpu.saved_activations();
    REQUIRE(g.size() == c.size());
    for (size_t i = 0; i < g.size(); ++i)
        c[i].tensor.copy_from(g[i].tensor);
    cpu.zero_grad();
    cpu.backward(gpu_dlogits.to(Device::CPU));
    const auto gg = gpu.gradients(), gc = cpu.gradients();
    REQUIRE(gg.size() == gc.size());
    for (size_t i = 0; i < gg.size(); ++i)
        check_tensor(gg[i].tensor.to_host(), gc[i].tensor.to_host(), kGradTol,
                     "gradient " + gc[i].name);
}

void check_state(const ResNet18& gpu, const ResNet18& cpu, double tol, const std::string& what) {
    const StFile sg = gpu.state_dict(), sc = cpu.state_dict();
    REQUIRE(sg.tensors.size() == sc.tensors.size());
    for (size_t i = 0; i < sc.tensors.size(); ++i) {
        const StTensor& c = sc.tensors[i];
        if (c.dtype == StDtype::I64) {
            CHECK(sg.tensors[i].i64 == c.i64);
            continue;
        }
        const bool running = c.name.find("running_") != std::string::npos;
        check_tensor(sg.tensors[i].f32, c.f32, running ? kForwardTol : tol, what + " " + c.name);
    }
}

// One training step on both twins, checked at every stage: forward state and loss, gradients
// (teacher-forced), then the Adam update from the GPU's gradients and the running statistics.
void check_train_step(ResNet18& gpu, ResNet18& cpu, int N) {
    Batch bg = batch(N, Device::CUDA), bc = batch(N, Device::CPU);
    AdamParams adam;
    adam.step = int(gpu.adam_steps() + 1);
    const float lg = gpu.train_step(bg.x, bg.targets, &bg.pos_weight, adam);

    // The CPU twin: the same forward, the same loss...
    cpu.set_mode(Mode::Train);
    cpu.forward(bc.x);
    std::vector<float> dlogits(size_t(N) * kG);
    float lc = 0;
    cpu::bce_logits_forward_backward(N, kG, cpu.logits().data(), bc.targets.data(),
                                     bc.pos_weight.data(), &lc, dlogits.data());
    CHECK(std::fabs(lg - lc) <= kLossTol * std::fabs(lc));
    check_forward_state(gpu, cpu);

    // ... the GPU's dlogits through the CPU backward from the GPU's forward state ...
    Tensor gpu_dlogits = Tensor::zeros({N, kG}, Device::CUDA);
    Tensor gpu_loss = Tensor::zeros({1}, Device::CUDA);
    gpu::bce_logits_forward_backward(N, kG, gpu.logits().data(), bg.targets.data(),
                                     bg.pos_weight.data(), gpu_loss.data(), gpu_dlogits.data(),
                                     nullptr);
    GNET_CUDA_CHECK(cudaDeviceSynchronize());
    check_teacher_forced_backward(gpu, cpu, gpu_dlogits);

    // ... and the CPU's Adam on the GPU's gradients gives the GPU's new parameters.
    const Arena& ga = gpu.gradient_arena();
    Tensor::view(cpu.gradient_arena().data(), {ga.numel()}, Device::CPU)
        .copy_from(Tensor::view(ga.data(), {ga.numel()}, Device::CUDA));
    cpu.adam_step(adam);
    cpu.set_adam_steps(gpu.adam_steps());
    check_state(gpu, cpu, kAdamTol, "after the step:");
}

void check_eval_forward(ResNet18& gpu, ResNet18& cpu, int N) {
    gpu.set_mode(Mode::Eval);
    cpu.set_mode(Mode::Eval);
    const std::vector<float> g = gpu.forward(batch(N, Device::CUDA).x).to_host();
    const std::vector<float> c = cpu.forward(batch(N, Device::CPU).x).to_host();
    check_tensor(g, c, kForwardTol, "eval logits at batch " + std::to_string(N));
    gpu.set_mode(Mode::Train);
    cpu.set_mode(Mode::Train);
}

}  // namespace

TEST_CASE("ResNet18 GPU matches the CPU twin at batch 2: forward, backward, Adam, eval" *
          doctest::test_suite("model")) {
    ResNet18 cpu_model(config(2), Device::CPU);
    ResNet18 gpu_model(config(2), Device::CUDA);
    cpu_model.load_state_dict(resnet18_pattern_state(kG), "pattern");
    gpu_model.load_state_dict(resnet18_pattern_state(kG), "pattern");
    check_eval_forward(gpu_model, cpu_model, 2);  // the pattern's running statistics
    check_train_step(gpu_model, cpu_model, 2);
    check_eval_forward(gpu_model, cpu_model, 1);
}

// The configuration a user's training runs: ~480 GFLOP, one test on its own (test suite "slow").
TEST_CASE("ResNet18 GPU matches the CPU twin at batch 32, then a partial batch of 7" *
          doctest::test_suite("slow")) {
    ResNet18 cpu_model(config(32), Device::CPU);
    ResNet18 gpu_model(config(32), Device::CUDA);
    cpu_model.load_state_dict(resnet18_init_state(kG, 5), "init 5");
    gpu_model.load_state_dict(resnet18_init_state(kG, 5), "init 5");
    check_train_step(gpu_model, cpu_model, 32);
    check_train_step(gpu_model, cpu_model, 7);
    check_eval_forward(gpu_model, cpu_model, 7);
}

// On a 32x64 input: the properties do not depend on the size, and the reruns are many.
TEST_CASE("ResNet18 GPU train step allocates nothing and is deterministic" *
          doctest::test_suite("model")) {
    const int N = 2, H = 32, W = 64;
    ResNet18Config c = config(N);
    c.height = H;
    c.width = W;
    c.init_seed = 9;
    const Tensor x = Tensor::from_vector({N, 1, H, W}, pattern_input(N, H, W), Device::CUDA);
    const Tensor t = Tensor::from_vector({N, kG}, pattern_targets(N, kG), Device::CUDA);
    const Tensor pw = Tensor::from_vector({kG}, pattern_pos_weight(kG), Device::CUDA);
    cudaStream_t stream = nullptr;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    {
        AdamParams adam;
        ResNet18 m(c, Device::CUDA, stream);
        std::vector<float> first;
        // Warm-up: every kernel runs once (lazy module loading may take device memory then).
        first.push_back(m.train_step(x, t, &pw, adam));
        m.set_mode(Mode::Eval);
        m.forward(x);
        m.set_mode(Mode::Train);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        size_t free_before = 0, free_after = 0, total = 0;
        GNET_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
        const float* params = m.parameter_arena().data();
        const float* acts = m.activation_arena().data();
        first.push_back(m.train_step(x, t, &pw, adam));
        m.set_mode(Mode::Eval);
        m.forward(x);
        m.set_mode(Mode::Train);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
        CHECK(free_after == free_before);
        CHECK(m.parameter_arena().data() == params);
        CHECK(m.activation_arena().data() == acts);
        for (float l : first)
            CHECK(std::isfinite(l));
        CHECK(first[1] < first[0]);  // the step trained: the same batch again has a lower loss

        // A model from the same seed repeats the losses bit for bit, under every schedule.
        const auto reruns = gnet::test::results_under_varied_schedules([&] {
            ResNet18 again(c, Device::CUDA, stream);
            std::vector<float> losses;
            for (int s = 0; s < 2; ++s)
                losses.push_back(again.train_step(x, t, &pw, adam));
            return losses;
        });
        for (const auto& r : reruns)
            CHECK(r == first);
    }
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST_CASE("a checkpoint written from the GPU model loads on the CPU with the same state" *
          doctest::test_suite("model")) {
    gnet::test::TempDir dir;
    ResNet18Config c = config(1);
    c.height = 64;
    c.width = 96;
    c.init_seed = 4;
    ResNet18 g(c, Device::CUDA);
    Tensor x = Tensor::from_vector({1, 1, 64, 96}, pattern_input(1, 64, 96), Device::CUDA);
    Tensor t = Tensor::from_vector({1, kG}, pattern_targets(1, kG), Device::CUDA);
    g.train_step(x, t, nullptr, AdamParams{});
    CheckpointMeta meta;
    for (int i = 0; i < kG; ++i)
        meta.genres.push_back("g" + std::to_string(i));
    write_checkpoint(dir.file("m.safetensors"), g, meta);
    ResNet18 h(c, Device::CPU);
    load_checkpoint(read_checkpoint(dir.file("m.safetensors")), h);
    StFile a = g.state_dict(), b = h.state_dict();
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        CHECK(a.tensors[i].f32 == b.tensors[i].f32);
        CHECK(a.tensors[i].i64 == b.tensors[i].i64);
    }
}
