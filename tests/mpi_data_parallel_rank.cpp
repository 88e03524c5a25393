// One rank of the 2-rank data-parallel check; tests/test_data_parallel.cpp starts two of them
// with mpirun. Every rank takes one training step on its own batch with the gradients averaged
// by the bucketed reducer; rank 0 then repeats the step in a single process, without any
// communication: the gradients of the two ranks' batches (each with its own batch-norm
// statistics, as PyTorch DDP computes them) averaged, then one Adam step. The averaged
// gradients and the updated weights must agree up to float summation order (two-term sums are
// exact here, so the check is bit for bit), on every rank. Also: several buckets were started
// before the backward pass ended (the overlap). Prints one line per check; exit 0 = all passed.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/bce.h"
#include "nn/resnet18.h"
#include "train/communicator.h"
#include "train/gradient_reducer.h"

using namespace gnet;

namespace {

constexpr int kBatch = 2, kGenres = 3, kH = 32, kW = 64;

ResNet18Config small_config() {
    ResNet18Config c;
    c.num_genres = kGenres;
    c.max_batch = kBatch;
    c.height = kH;
    c.width = kW;
    c.init_seed = 7;
    return c;
}

// Rank r's batch: a function of r alone.
void rank_batch(int r, std::vector<float>& x, std::vector<float>& y) {
    std::mt19937_64 rng(1000 + uint64_t(r));
    std::uniform_real_distribution<float> u(0.f, 1.f);
    x.resize(size_t(kBatch) * kH * kW);
    y.resize(size_t(kBatch) * kGenres);
    for (float& v : x)
        v = u(rng);
    for (float& v : y)
        v = u(rng) < 0.4f ? 1.f : 0.f;
}

AdamParams adam_params() {
    AdamParams p;
    p.lr = 1e-3f;
    return p;
}

std::vector<float> host_copy(const float* p, int64_t n) {
    return std::vector<float>(p, p + n);
}

// Largest |a - b| / (1e-30 + |b|) and whether every value is finite.
double worst_relative(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
        const double d = std::fabs(double(a[i]) - double(b[i]));
        worst = std::max(worst, d / (1e-30 + std::fabs(double(b[i]))) * (d > 1e-12));
    }
    return worst;
}

}  // namespace

int main() {
    try {
        Communicator& comm = world_communicator(Device::CPU);
        const int rank = comm.rank();
        if (comm.size() != 2) {
            std::printf("rank %d: expected 2 ranks, got %d (start with mpirun -np 2)\n", rank,
                        comm.size());
            return 2;
        }
        int failures = 0;
        auto check = [&](bool ok, const char* what, double value) {
            if (rank == 0) std::printf("%s %s (%g)\n", ok ? "ok  " : "FAIL", what, value);
            failures += ok ? 0 : 1;
        };

        // The data-parallel step.
        ResNet18 model(small_config(), Device::CPU);
        GradientReducer reducer(comm, model, 64 << 10);  // 16k floats: many buckets
        std::vector<float> x, y;
        rank_batch(rank, x, y);
        model.train_step(Tensor::view(x.data(), {kBatch, 1, kH, kW}, Device::CPU),
                         Tensor::view(y.data(), {kBatch, kGenres}, Device::CPU), nullptr,
                         adam_params());
        const int64_t count = model.gradient_count();
        const std::vector<float> grads = host_copy(model.gradient_data(), count);
        const std::vector<float> params = host_copy(model.parameter_arena().data(), count);

        // Every rank holds the same weights: compare each with the sum over ranks.
        std::vector<double> sum(params.begin(), params.end());
        comm.allreduce_sum(sum.data(), int(sum.size()));
        double spread = 0;
        for (size_t i = 0; i < params.size(); ++i)
            spread = std::max(spread, std::fabs(sum[i] - 2.0 * double(params[i])));
        double all_spread = spread;
        comm.allreduce_sum(&all_spread, 1);
        check(all_spread == 0, "both ranks hold the same weights after the step", all_spread);

        const std::vector<int>& started = reducer.started_per_call();
        const int buckets = int(reducer.buckets().size());
        check(buckets > 10, "the gradient array is cut into many buckets", buckets);
        check(started.size() == 10 && started[started.size() - 2] > 0 &&
                  started[started.size() - 2] < buckets && started.back() == buckets,
              "buckets start during backward, the rest at its end",
              started.size() > 1 ? started[started.size() - 2] : -1);

        if (rank == 0) {
            // The same step in one process: average of the two batches' gradients, one Adam step.
            ResNet18 ref(small_config(), Device::CPU);
            std::vector<double> avg(size_t(count), 0.0);
            std::vector<float> loss(1), dlogits(size_t(kBatch) * kGenres);
            for (int r = 0; r < 2; ++r) {
                std::vector<float> xr, yr;
                rank_batch(r, xr, yr);
                ref.zero_grad();
                ref.set_mode(Mode::Train);
                Tensor logits =
                    ref.forward(Tensor::view(xr.data(), {kBatch, 1, kH, kW}, Device::CPU));
                cpu::bce_logits_forward_backward(kBatch, kGenres, logits.data(), yr.data(), nullptr,
                                                 loss.data(), dlogits.data());
                ref.backward(Tensor::view(dlogits.data(), {kBatch, kGenres}, Device::CPU));
                const float* g = ref.gradient_data();
                for (int64_t i = 0; i < count; ++i)
                    avg[size_t(i)] += g[i];
            }
            float* g = ref.gradient_data();
            for (int64_t i = 0; i < count; ++i)
                g[i] = float(avg[size_t(i)]) * 0.5f;
            AdamParams p = adam_params();
            p.step = 1;
            ref.adam_step(p);
            const std::vector<float> ref_grads = host_copy(ref.gradient_data(), count);
            const std::vector<float> ref_params = host_copy(ref.parameter_arena().data(), count);
            const double eg = worst_relative(grads, ref_grads);
            const double ep = worst_relative(params, ref_params);
            check(eg <= 1e-6, "averaged gradients = one process averaging both batches", eg);
            check(ep <= 1e-6, "weights after one step = one process on both batches", ep);
        }
        double total = failures;
        comm.allreduce_sum(&total, 1);
        if (rank == 0) std::printf("%s\n", total == 0 ? "all checks passed" : "some checks FAILED");
        return total == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mpi_data_parallel_rank: %s\n", e.what());
        return 1;
    }
}
