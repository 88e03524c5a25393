// bench_conv2d_fast: CPU time of the fast CPU backend's convolutions (cpu_fast::conv2d_*), every
// ResNet18 conv shape, forward / backward-data / backward-weight: the minimum of 3 calls of
// CLOCK_PROCESS_CPUTIME_ID, so a run on a shared machine measures the work rather than the wait
// (run it with GNET_CPU_THREADS=1 for per-core figures). GFLOP/s counts the direct convolution's
// 2*N*OC*OH*OW*C*KH*KW, so Winograd layers can read above the core's FMA peak. bench_conv2d
// validates the same kernels against the twin and times them on the wall clock.
//   GNET_CPU_THREADS=1 build/bench_conv2d_fast [BATCH [LAYER]]     (default batch 8, all layers)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/gemm_cpu_fast.h"

using namespace gnet;

namespace {

double cpu_seconds() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

struct Layer {
    const char* name;
    int C, H, W, OC, K, stride, pad;
};

}  // namespace

int main(int argc, char** argv) {
    if (!cpu_fast::available()) {
        std::fprintf(stderr, "bench_conv2d_fast: this CPU has no AVX2+FMA\n");
        return 1;
    }
    const int N = argc > 1 ? std::atoi(argv[1]) : 8;
    const char* only = argc > 2 ? argv[2] : nullptr;
    if (N < 1) {
        std::fprintf(stderr, "usage: bench_conv2d_fast [BATCH [LAYER]]\n");
        return 2;
    }
    const Layer layers[] = {
        {"conv1", 1, 128, 431, 64, 7, 2, 3},    {"l1", 64, 32, 108, 64, 3, 1, 1},
        {"l2.0.c1", 64, 32, 108, 128, 3, 2, 1}, {"l2.0.ds", 64, 32, 108, 128, 1, 2, 0},
        {"l2", 128, 16, 54, 128, 3, 1, 1},      {"l3.0.c1", 128, 16, 54, 256, 3, 2, 1},
        {"l3.0.ds", 128, 16, 54, 256, 1, 2, 0}, {"l3", 256, 8, 27, 256, 3, 1, 1},
        {"l4.0.c1", 256, 8, 27, 512, 3, 2, 1},  {"l4.0.ds", 256, 8, 27, 512, 1, 2, 0},
        {"l4", 512, 4, 14, 512, 3, 1, 1}};
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::printf("batch %d, CPU time (min of 3), GFLOP/s of the direct convolution\n", N);
    for (const Layer& l : layers) {
        if (only && std::strcmp(only, l.name) != 0) continue;
        const Conv2dParams p =
            Conv2dParams::make(N, l.C, l.H, l.W, l.OC, l.K, l.K, l.stride, l.pad);
        std::vector<float> x(size_t(p.x_size())), w(size_t(p.w_size())), y(size_t(p.y_size())),
            dy(size_t(p.y_size())), dx(size_t(p.x_size())), dw(size_t(p.w_size()));
        for (float& v : x)
            v = u(rng);
        for (float& v : w)
            v = u(rng);
        for (float& v : dy)
            v = u(rng);
        double t[3];
        for (int pass = 0; pass < 3; ++pass) {
            double best = 1e30;
            for (int r = 0; r < 3; ++r) {
                const double t0 = cpu_seconds();
                if (pass == 0)
                    cpu_fast::conv2d_forward(p, x.data(), w.data(), y.data());
                else if (pass == 1)
                    cpu_fast::conv2d_backward_data(p, dy.data(), w.data(), dx.data());
                else
                    cpu_fast::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(),
                                                     Accum::Overwrite);
                best = std::min(best, cpu_seconds() - t0);
            }
            t[pass] = best;
        }
        std::printf(
            "%-8s fwd %7.1f ms %6.1f GFLOP/s  bwd_data %7.1f ms %6.1f  bwd_w %7.1f ms %6.1f\n",
            l.name, t[0] * 1e3, p.flops() / t[0] * 1e-9, t[1] * 1e3, p.flops() / t[1] * 1e-9,
            t[2] * 1e3, p.flops() / t[2] * 1e-9);
    }
    return 0;
}
