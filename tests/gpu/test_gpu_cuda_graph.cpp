// CUDA graphs: CudaGraph replays what it captured, reading device and pinned host memory as they
// are at each launch; a synchronising call inside a capture is an error that leaves the stream
// usable; and ResNet18Bf16's graph-captured train steps (pipelined two at a time, the partial
// last batch in its own graph, a new learning rate every step) and eval forwards give exactly
// the weights, losses and logits of the same steps run kernel by kernel.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "kernels/relu.h"
#include "nn/buffer.h"
#include "nn/cuda_graph.h"
#include "nn/resnet18_bf16.h"
#include "tests/gpu/device_array.h"

using namespace gnet;
using gnet::test::DeviceArray;

TEST_CASE("CudaGraph replays its captured work on the data present at each launch") {
    OwnedStream s = OwnedStream::create();
    const int n = 1000;
    PinnedBuffer host_in(n * sizeof(float)), host_out(n * sizeof(float));
    DeviceArray<float> x(n), y(n);
    float* in = host_in.as<float>();
    float* out = host_out.as<float>();
    const CudaGraph g = CudaGraph::capture(s.get(), [&] {
        GNET_CUDA_CHECK(
            cudaMemcpyAsync(x.ptr(), in, n * sizeof(float), cudaMemcpyHostToDevice, s.get()));
        gpu::relu_forward(n, x.ptr(), y.ptr(), s.get());
        GNET_CUDA_CHECK(
            cudaMemcpyAsync(out, y.ptr(), n * sizeof(float), cudaMemcpyDeviceToHost, s.get()));
    });
    REQUIRE_FALSE(g.empty());
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < n; ++i)
            in[i] = float((i * 7 + round * 13) % 21) - 10.f;
        g.launch(s.get());
        GNET_CUDA_CHECK(cudaStreamSynchronize(s.get()));
        int wrong = 0;
        for (int i = 0; i < n; ++i)
            wrong += out[i] != (in[i] > 0.f ? in[i] : 0.f);
        CAPTURE(round);
        CHECK(wrong == 0);
    }
}

TEST_CASE("A synchronising call inside a capture fails it and leaves the stream usable") {
    OwnedStream s = OwnedStream::create();
    DeviceArray<float> x(std::vector<float>(64, -1.f)), y(64);
    CHECK_THROWS(CudaGraph::capture(s.get(), [&] {
        gpu::relu_forward(64, x.ptr(), y.ptr(), s.get());
        GNET_CUDA_CHECK(cudaStreamSynchronize(s.get()));
    }));
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
    GNET_CUDA_CHECK(cudaStreamIsCapturing(s.get(), &status));
    CHECK(status == cudaStreamCaptureStatusNone);
    gpu::relu_forward(64, x.ptr(), y.ptr(), s.get());
    GNET_CUDA_CHECK(cudaStreamSynchronize(s.get()));
    CHECK(y.host() == std::vector<float>(64, 0.f));
}

namespace {

ResNet18Config small_config() {
    ResNet18Config c;
    c.num_genres = 4;
    c.max_batch = 3;
    c.height = 32;
    c.width = 40;
    c.init_seed = 5;
    c.precision = Precision::Bf16;
    return c;
}

struct Step {
    std::vector<float> x, y;
    int n;
    float lr;
};

std::vector<Step> steps() {
    const ResNet18Config c = small_config();
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<Step> out;
    const int sizes[] = {3, 3, 2, 3, 1};  // full batches and partial ones
    for (int i = 0; i < 5; ++i) {
        Step s;
        s.n = sizes[i];
        s.lr = 1e-3f * float(i + 1);
        s.x.resize(size_t(s.n) * c.height * c.width);
        s.y.resize(size_t(s.n) * c.num_genres);
        for (float& e : s.x)
            e = u(rng);
        for (float& e : s.y)
            e = u(rng) < 0.4f ? 1.f : 0.f;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

TEST_CASE("ResNet18Bf16 train steps and eval forwards as CUDA graphs equal kernel-by-kernel ones" *
          doctest::test_suite("model")) {
    const ResNet18Config c = small_config();
    ResNet18Bf16 graphed(c, Device::CUDA), direct(c, Device::CUDA);
    direct.set_graphs_enabled(false);
    REQUIRE(graphed.uses_graphs());
    REQUIRE_FALSE(direct.uses_graphs());
    const Tensor pw = Tensor::from_vector({4}, {1.f, 2.f, 3.f, 0.5f}, Device::CPU);
    AdamParams adam;
    adam.mode = AdamMode::AdamW;
    adam.weight_decay = 0.01f;

    const std::vector<Step> all = steps();
    auto x_of = [&](const Step& s) {
        return Tensor::from_vector({s.n, 1, c.height, c.width}, s.x, Device::CPU);
    };
    auto y_of = [&](const Step& s) {
        return Tensor::from_vector({s.n, c.num_genres}, s.y, Device::CPU);
    };
    // The graphed model pipelines: begin, begin, finish, begin, finish, ...
    std::vector<float> losses_graphed, losses_direct;
    std::vector<std::vector<float>> logits_graphed, logits_direct;
    std::vector<float> z;
    for (size_t i = 0; i < all.size(); ++i) {
        adam.lr = all[i].lr;
        graphed.begin_train_step(x_of(all[i]), y_of(all[i]), i % 2 ? &pw : nullptr, adam);
        if (i > 0) {
            losses_graphed.push_back(graphed.finish_train_step(&z));
            logits_graphed.push_back(z);
        }
        losses_direct.push_back(
            direct.train_step(x_of(all[i]), y_of(all[i]), i % 2 ? &pw : nullptr, adam));
        logits_direct.push_back(direct.logits().to_host());
    }
    losses_graphed.push_back(graphed.finish_train_step(&z));
    logits_graphed.push_back(z);
    CHECK(losses_graphed == losses_direct);
    CHECK(logits_graphed == logits_direct);
    CHECK(graphed.adam_steps() == direct.adam_steps());

    const StFile a = graphed.state_dict(), b = direct.state_dict();
    for (const StTensor& t : b.tensors) {
        CAPTURE(t.name);
        const StTensor* g = a.find(t.name);
        REQUIRE(g != nullptr);
        CHECK(g->f32 == t.f32);
        CHECK(g->i64 == t.i64);  // num_batches_tracked
    }

    graphed.set_mode(Mode::Eval);
    direct.set_mode(Mode::Eval);
    for (const Step& s : all) {
        const std::vector<float> lg = graphed.forward(x_of(s)).to_host();
        const std::vector<float> ld = direct.forward(x_of(s)).to_host();
        CHECK(lg == ld);
    }
}
