// What one bf16 training step and one bf16 inference pass of ResNet18 ask of a GPU, counted from
// the layer calls the model makes (nn/traffic.h): per op, the calls, the compulsory device-memory
// bytes (each operand read once, each result written once) and the FLOPs, per sample at the
// given batch; then the roofline of an H100 SXM and an H200 for those counts. The counting runs
// the step on the CPU (the bf16-faithful mode): the counts are a property of the calls, not of
// the device, so this needs no GPU. Usage: bench_step_traffic [--batch 32] [--quick].
#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/harness.h"
#include "nn/model_init.h"
#include "nn/resnet18_bf16.h"
#include "nn/traffic.h"

using namespace gnet;
using namespace gnet::bench;

namespace {

constexpr int kGenres = 10, kH = 128, kW = 431;

struct Gpu {
    const char* name;
    double bf16_flops;  // dense tensor-core peak, FLOP/s
    double hbm;         // bytes/s
};
constexpr Gpu kGpus[] = {{"H100 SXM", 989e12, 3.35e12}, {"H200", 989e12, 4.8e12}};

void print(const char* title, const TrafficScope& t, int N) {
    std::printf("== %s, batch %d: per sample ==\n", title, N);
    std::printf("%-24s %7s %12s %12s\n", "op", "calls", "MB", "GFLOP");
    for (const auto& [name, op] : t.ops())
        std::printf("%-24s %7lld %12.3f %12.4f\n", name.c_str(), op.calls, op.bytes / N / 1e6,
                    op.flops / N / 1e9);
    const double bytes = t.bytes() / N, flops = t.flops() / N;
    std::printf("%-24s %7s %12.3f %12.4f   (%.0f FLOP per byte)\n", "total", "", bytes / 1e6,
                flops / 1e9, flops / bytes);
    for (const Gpu& g : kGpus) {
        const double compute = g.bf16_flops / flops, memory = g.hbm / bytes;
        std::printf(
            "%s roofline: compute %.0f samples/s, memory %.0f samples/s -> %s-bound, "
            "%.0f samples/s\n",
            g.name, compute, memory, compute < memory ? "compute" : "memory",
            std::min(compute, memory));
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        Options o = parse_options(argc, argv,
                                  "bench_step_traffic: the bytes and FLOPs of one bf16 ResNet18 "
                                  "train step and inference pass, counted from the layer calls");
        const int N = o.quick ? std::min(o.batch, 2) : o.batch;
        ResNet18Config c;
        c.num_genres = kGenres;
        c.max_batch = N;
        c.height = kH;
        c.width = kW;
        c.precision = Precision::Bf16;
        ResNet18Bf16 m(c, Device::CPU);
        const Tensor x = Tensor::from_vector({N, 1, kH, kW}, pattern_input(N, kH, kW), Device::CPU);
        const Tensor y =
            Tensor::from_vector({N, kGenres}, pattern_targets(N, kGenres), Device::CPU);
        std::printf("%s\n", machine_description().c_str());
        {
            TrafficScope t;
            m.train_step(x, y, nullptr, AdamParams{});
            print("bf16 train step", t, N);
        }
        m.set_mode(Mode::Eval);
        {
            TrafficScope t;
            m.forward(x);
            print("bf16 inference (eval-mode forward)", t, N);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_step_traffic: %s\n", e.what());
        return 1;
    }
}
