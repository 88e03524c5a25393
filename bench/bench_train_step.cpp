// Whole training step of ResNet18: zero_grad + forward (train mode) + BCE-with-logits + backward +
// Adam over every parameter, on a batch of (N, 1, 128, 431) log-mel chunks, 10 genres. The step
// is Network::train_step, exactly what `gnet train` runs (it includes copying the loss back), in
// both precisions: fp32 (ResNet18) and bf16 (ResNet18Bf16; on a GPU as one CUDA graph per step
// and, for comparison, kernel by kernel with GNET_CUDA_GRAPHS' effect; on a CPU the
// bf16-faithful mode).
//
// Validation first: on the GPU, one step from the same initial state must give the CPU twin's
// loss (relative 1e-4); on the CPU the loss must be finite. Then warm-up and the median of the
// repeats. Rate: samples/s = N / median time, and GFLOP/s with
//   FLOPs per step = 3 * (forward conv + fc FLOPs) - conv1's backward-data FLOPs (not computed),
// each conv counting 2*N*OC*OH*OW*C*KH*KW (forward, backward-data and backward-weight alike).
// The PyTorch yardstick on the CPU is bench/torch_train_step.py (same model, batch, threads).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include "bench/harness.h"
#include "kernels/conv2d.h"
#include "kernels/error.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "nn/resnet18_bf16.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>

#include "bench/harness_gpu.h"
#include "kernels/cuda_check.h"
#endif

using namespace gnet;
using namespace gnet::bench;

namespace {

constexpr int kGenres = 10, kH = 128, kW = 431;

// Training FLOPs of one step (see the header).
double step_flops(int N) {
    double fwd = 0, conv1 = 0;
    auto conv = [&](int C, int H, int W, int OC, int K, int s, int pad, int& OH, int& OW) {
        Conv2dParams p = Conv2dParams::make(N, C, H, W, OC, K, K, s, pad);
        OH = p.OH;
        OW = p.OW;
        return p.flops();
    };
    int H, W, OH, OW;
    conv1 = conv(1, kH, kW, 64, 7, 2, 3, H, W);
    fwd += conv1;
    H = conv_out_size(H, 3, 2, 1);
    W = conv_out_size(W, 3, 2, 1);
    int in = 64;
    for (int li = 0; li < 4; ++li) {
        int ch = 64 << li;
        for (int bi = 0; bi < 2; ++bi) {
            int s = (bi == 0 && li > 0) ? 2 : 1;
            fwd += conv(in, H, W, ch, 3, s, 1, OH, OW);
            int h2, w2;
            fwd += conv(ch, OH, OW, ch, 3, 1, 1, h2, w2);
            if (s != 1 || in != ch) fwd += conv(in, H, W, ch, 1, s, 0, h2, w2);
            H = OH;
            W = OW;
            in = ch;
        }
    }
    fwd += 2.0 * N * 512 * kGenres;
    return 3 * fwd - conv1;
}

struct Batch {
    Tensor x, targets, pos_weight;
};
Batch make_batch(int N, Device d) {
    return {Tensor::from_vector({N, 1, kH, kW}, pattern_input(N, kH, kW), d),
            Tensor::from_vector({N, kGenres}, pattern_targets(N, kGenres), d),
            Tensor::from_vector({kGenres}, pattern_pos_weight(kGenres), d)};
}

ResNet18Config config(int N, Precision precision = Precision::Fp32) {
    ResNet18Config c;
    c.num_genres = kGenres;
    c.max_batch = N;
    c.height = kH;
    c.width = kW;
    c.precision = precision;
    c.init_seed = 0;
    return c;
}

// op "train_step" (samples/s, with GFLOP/s and the loss in the note) or "inference" (one
// eval-mode forward pass over N chunks, what predict and evaluate run; chunks/s).
Result make_result(const std::string& op, const std::string& device, int N, Timing t,
                   double loss = 0, const std::string& impl = "gnet") {
    Result r;
    r.op = op;
    r.shape = "N" + std::to_string(N) + " x [1, 128, 431], G" + std::to_string(kGenres);
    r.device = device;
    r.impl = impl;
    r.median_ms = t.median_ms;
    r.min_ms = t.min_ms;
    r.work = N;
    r.unit = op == "inference" ? "chunks/s" : "samples/s";
    r.rate = N / (t.median_ms * 1e-3);
    if (op == "train_step") {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.1f GFLOP/s; loss %.4f",
                      gflops(step_flops(N), t.median_ms), loss);
        r.note = buf;
    }
    return r;
}

void run_cpu(const Options& o, Report& report) {
    const int N = o.batch;
    ResNet18 m(config(N), Device::CPU);
    m.init(0);
    Batch b = make_batch(N, Device::CPU);
    AdamParams adam;
    float loss = m.train_step(b.x, b.targets, &b.pos_weight, adam);
    if (!std::isfinite(loss)) throw Error("CPU train step gave a non-finite loss");
    const float loss0 = loss;
    // A step takes seconds on a small machine: few repeats.
    Timing t = time_cpu([&] { loss = m.train_step(b.x, b.targets, &b.pos_weight, adam); },
                        std::min(o.warmup, 1), std::min(o.repeats, 5));
    report.add(make_result("train_step", "cpu", N, t, loss));
    m.set_mode(Mode::Eval);
    Timing ti = time_cpu([&] { m.forward(b.x); }, std::min(o.warmup, 1), std::min(o.repeats, 5));
    report.add(make_result("inference", "cpu", N, ti));

    // The bf16-faithful mode (--precision bf16 on a CPU): its loss must be float32's within
    // bf16's precision (a few roundings of 2^-8 each).
    ResNet18Bf16 mb(config(N, Precision::Bf16), Device::CPU);
    float lb = mb.train_step(b.x, b.targets, &b.pos_weight, adam);
    if (!(std::fabs(lb - loss0) <= 0.03 * std::fabs(loss0)))
        throw Error("bf16-faithful CPU train step loss " + std::to_string(lb) +
                    " is not float32's " + std::to_string(loss0) + " within 3%");
    Timing tb = time_cpu([&] { lb = mb.train_step(b.x, b.targets, &b.pos_weight, adam); },
                         std::min(o.warmup, 1), std::min(o.repeats, 5));
    report.add(make_result("train_step", "cpu", N, tb, lb, "gnet bf16-faithful"));
    mb.set_mode(Mode::Eval);
    Timing tbi = time_cpu([&] { mb.forward(b.x); }, std::min(o.warmup, 1), std::min(o.repeats, 5));
    report.add(make_result("inference", "cpu", N, tbi, 0, "gnet bf16-faithful"));
}

#if GNET_HAVE_CUDA
void run_gpu(const Options& o, Report& report) {
    const int N = o.batch;
    cudaStream_t stream = nullptr;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    {
        ResNet18 g(config(N), Device::CUDA, stream);
        g.init(0);
        Batch bg = make_batch(N, Device::CUDA);
        AdamParams adam;
        float lg = g.train_step(bg.x, bg.targets, &bg.pos_weight, adam);
        {
            ResNet18 c(config(N), Device::CPU);
            c.init(0);
            Batch bc = make_batch(N, Device::CPU);
            float lc = c.train_step(bc.x, bc.targets, &bc.pos_weight, adam);
            if (!(std::fabs(lg - lc) <= 1e-4 * std::fabs(lc)))
                throw Error("GPU train step loss " + std::to_string(lg) +
                            " differs from the CPU twin's " + std::to_string(lc));
        }
        float loss = 0;
        Timing t = time_gpu(
            [&](cudaStream_t) { loss = g.train_step(bg.x, bg.targets, &bg.pos_weight, adam); },
            stream, o.warmup, o.repeats, /*flush_l2=*/false);
        report.add(make_result("train_step", "cuda", N, t, loss));
        g.set_mode(Mode::Eval);
        Timing ti = time_gpu([&](cudaStream_t) { g.forward(bg.x); }, stream, o.warmup, o.repeats,
                             /*flush_l2=*/false);
        report.add(make_result("inference", "cuda", N, ti));

        // bf16 tensor cores: validated against the bf16-faithful CPU mode (the same roundings,
        // float32 sums in another order), then timed as CUDA graphs and kernel by kernel.
        ResNet18Bf16 gb(config(N, Precision::Bf16), Device::CUDA, stream);
        const float lgb = gb.train_step(bg.x, bg.targets, &bg.pos_weight, adam);
        {
            ResNet18Bf16 cb(config(N, Precision::Bf16), Device::CPU);
            Batch bc = make_batch(N, Device::CPU);
            const float lcb = cb.train_step(bc.x, bc.targets, &bc.pos_weight, adam);
            if (!(std::fabs(lgb - lcb) <= 0.02 * std::fabs(lcb)))
                throw Error("GPU bf16 train step loss " + std::to_string(lgb) +
                            " differs from the bf16-faithful CPU twin's " + std::to_string(lcb));
        }
        for (const bool graphs : {true, false}) {
            gb.set_graphs_enabled(graphs);
            const std::string impl = graphs ? "gnet bf16 (CUDA graph)" : "gnet bf16 (kernels)";
            gb.set_mode(Mode::Train);
            Timing tb = time_gpu(
                [&](cudaStream_t) { loss = gb.train_step(bg.x, bg.targets, &bg.pos_weight, adam); },
                stream, o.warmup, o.repeats, /*flush_l2=*/false);
            report.add(make_result("train_step", "cuda", N, tb, loss, impl));
            gb.set_mode(Mode::Eval);
            Timing tbi = time_gpu([&](cudaStream_t) { gb.forward(bg.x); }, stream, o.warmup,
                                  o.repeats, /*flush_l2=*/false);
            report.add(make_result("inference", "cuda", N, tbi, 0, impl));
        }
    }
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}
#endif

}  // namespace

int main(int argc, char** argv) {
    try {
        Options o = parse_options(argc, argv,
                                  "bench_train_step: one ResNet18 training step (forward, BCE, "
                                  "backward, Adam) on N x [1, 128, 431], samples/s");
        if (o.quick) o.batch = std::min(o.batch, 2);
        const Device device = resolve_device(parse_device_choice(o.device), &std::cerr);
        Report report("ResNet18 train step (batch " + std::to_string(o.batch) + ")");
        report.note(machine_description());
        if (device == Device::CPU) {
            run_cpu(o, report);
        } else {
#if GNET_HAVE_CUDA
            run_gpu(o, report);
#endif
        }
        report.print_table();
        if (!o.json_path.empty()) report.write_json(o.json_path);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_train_step: %s\n", e.what());
        return 1;
    }
}
