// ResNet18 on the GPU against the CPU twin at batch 2 on [1, 128, 431]: logits, loss, every
// gradient, running statistics; a train step allocates no GPU memory; same seed, same losses;
// a checkpoint written from the GPU model loads on the CPU.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda_check.h"
#include "nn/checkpoint.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr int kN = 2, kG = 10, kH = 128, kW = 431;
// Both twins are float32 with different summation orders; tolerances are relative to the
// largest magnitude of each tensor (gradients pass through 17 batch norms).
constexpr double kLogitRel = 1e-4;
constexpr double kLossRel = 1e-5;
constexpr double kGradRel = 2e-3;
constexpr double kBufferRel = 1e-4;

ResNet18Config config(int N) {
    ResNet18Config c;
    c.num_genres = kG;
    c.max_batch = N;
    c.height = kH;
    c.width = kW;
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

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v)
        m = std::max(m, double(std::fabs(x)));
    return m;
}

void check_rel(const std::vector<float>& got, const std::vector<float>& ref, double rel,
               const std::string& what) {
    INFO(what);
    double scale = std::max(max_abs(ref), 1e-30);
    GNET_CHECK_CLOSE(got, ref, (Tolerance{rel * scale, rel}));
}

}  // namespace

TEST_CASE("ResNet18 GPU matches the CPU twin: logits, loss, gradients, running statistics") {
    ResNet18 cpu_model(config(kN), Device::CPU);
    ResNet18 gpu_model(config(kN), Device::CUDA);
    cpu_model.load_state_dict(resnet18_pattern_state(kG), "pattern");
    gpu_model.load_state_dict(resnet18_pattern_state(kG), "pattern");
    Batch bc = batch(kN, Device::CPU);
    Batch bg = batch(kN, Device::CUDA);

    // Eval forward first (running statistics of the pattern).
    cpu_model.set_mode(Mode::Eval);
    gpu_model.set_mode(Mode::Eval);
    check_rel(gpu_model.forward(bg.x).to_host(), cpu_model.forward(bc.x).to_host(), kLogitRel,
              "eval logits");

    AdamParams adam;
    float lc = cpu_model.train_step(bc.x, bc.targets, &bc.pos_weight, adam);
    float lg = gpu_model.train_step(bg.x, bg.targets, &bg.pos_weight, adam);
    CHECK(std::fabs(lg - lc) <= kLossRel * std::fabs(lc) + 1e-7);
    check_rel(gpu_model.logits().to_host(), cpu_model.logits().to_host(), kLogitRel,
              "train logits");

    auto gc = cpu_model.gradients();
    auto gg = gpu_model.gradients();
    REQUIRE(gc.size() == gg.size());
    for (size_t i = 0; i < gc.size(); ++i)
        check_rel(gg[i].tensor.to_host(), gc[i].tensor.to_host(), kGradRel,
                  "gradient " + gc[i].name);

    StFile sc = cpu_model.state_dict(), sg = gpu_model.state_dict();
    for (size_t i = 0; i < sc.tensors.size(); ++i) {
        const StTensor& c = sc.tensors[i];
        if (c.name.find("running_") != std::string::npos)
            check_rel(sg.tensors[i].f32, c.f32, kBufferRel, c.name);
        if (c.dtype == StDtype::I64) CHECK(sg.tensors[i].i64 == c.i64);
    }
}

TEST_CASE("ResNet18 GPU train step allocates nothing and is deterministic") {
    const int N = 4;
    cudaStream_t stream = nullptr;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    {
        Batch b = batch(N, Device::CUDA);
        AdamParams adam;
        ResNet18 m(config(N), Device::CUDA, stream);
        m.init(9);
        std::vector<float> first;
        // Warm-up: every kernel runs once (lazy module loading may take device memory then).
        first.push_back(m.train_step(b.x, b.targets, &b.pos_weight, adam));
        m.set_mode(Mode::Eval);
        m.forward(b.x);
        m.set_mode(Mode::Train);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        size_t free_before = 0, free_after = 0, total = 0;
        GNET_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
        const float* params = m.parameter_arena().data();
        const float* acts = m.activation_arena().data();
        for (int s = 0; s < 3; ++s)
            first.push_back(m.train_step(b.x, b.targets, &b.pos_weight, adam));
        m.set_mode(Mode::Eval);
        m.forward(b.x);
        m.set_mode(Mode::Train);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
        CHECK(free_after == free_before);
        CHECK(m.parameter_arena().data() == params);
        CHECK(m.activation_arena().data() == acts);
        for (float l : first)
            CHECK(std::isfinite(l));

        ResNet18 again(config(N), Device::CUDA, stream);
        again.init(9);
        std::vector<float> second;
        for (int s = 0; s < 4; ++s)
            second.push_back(again.train_step(b.x, b.targets, &b.pos_weight, adam));
        CHECK(second == first);
        MESSAGE("GPU losses: " << first[0] << " " << first[1] << " " << first[2] << " "
                               << first[3]);
    }
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST_CASE("a checkpoint written from the GPU model loads on the CPU with the same state") {
    gnet::test::TempDir dir;
    ResNet18Config c = config(1);
    c.height = 64;
    c.width = 96;
    ResNet18 g(c, Device::CUDA);
    g.init(4);
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
