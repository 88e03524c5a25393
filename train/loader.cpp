#include "train/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/error.h"
#include "nn/buffer.h"
#include "nn/tensor.h"

namespace gnet {

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
    auto splitmix = [](uint64_t z) {
        z += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    return splitmix(splitmix(splitmix(a) ^ b) ^ c);
}

namespace {

// Uniform integer in [0, bound] by rejection (unbiased, portable).
uint64_t uniform_upto(std::mt19937_64& rng, uint64_t bound) {
    if (bound == 0) return 0;
    const uint64_t range = bound + 1;
    if (range == 0) return rng();  // bound = 2^64 - 1
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do
        r = rng();
    while (r >= limit);
    return r % range;
}

}  // namespace

std::vector<int> shuffled_order(int n, uint64_t seed, int epoch) {
    std::vector<int> order(static_cast<size_t>(std::max(n, 0)));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(mix_seed(seed, uint64_t(epoch), 0x5348554646ull));
    for (int i = n - 1; i > 0; --i) {
        int j = int(uniform_upto(rng, uint64_t(i)));
        std::swap(order[size_t(i)], order[size_t(j)]);
    }
    return order;
}

std::vector<int> weighted_order(const std::vector<double>& weights, uint64_t seed, int epoch) {
    std::vector<double> cumulative(weights.size());
    double sum = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
        GNET_CHECK(weights[i] >= 0 && std::isfinite(weights[i]), "sample weights must be >= 0");
        sum += weights[i];
        cumulative[i] = sum;
    }
    GNET_CHECK(sum > 0, "sample weights sum to 0");
    std::mt19937_64 rng(mix_seed(seed, uint64_t(epoch), 0x42414c414e4345ull));
    std::vector<int> order(weights.size());
    for (int& o : order) {
        // 53 random bits -> [0, 1); then the first cumulative weight above u * sum.
        const double u = double(rng() >> 11) * 0x1.0p-53 * sum;
        const size_t i =
            size_t(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
        o = int(std::min(i, weights.size() - 1));
    }
    return order;
}

void spec_augment(float* x, const SpecAugmentOptions& opt, uint64_t sample_seed) {
    std::mt19937_64 rng(sample_seed);
    for (int m = 0; m < opt.freq_masks; ++m) {
        int width = int(uniform_upto(rng, uint64_t(std::clamp(opt.freq_width, 0, kMelBands))));
        int start = int(uniform_upto(rng, uint64_t(kMelBands - width)));
        for (int f = start; f < start + width; ++f)
            std::fill_n(x + size_t(f) * kFrames, kFrames, 0.f);
    }
    for (int m = 0; m < opt.time_masks; ++m) {
        int width = int(uniform_upto(rng, uint64_t(std::clamp(opt.time_width, 0, kFrames))));
        int start = int(uniform_upto(rng, uint64_t(kFrames - width)));
        for (int f = 0; f < kMelBands; ++f)
            std::fill_n(x + size_t(f) * kFrames + start, width, 0.f);
    }
}

// One batch's memory: pinned or plain host.
struct Loader::Slot {
    PinnedBuffer pinned_x, pinned_y;
    HostVector host_x, host_y;
    float* x = nullptr;
    float* y = nullptr;
    Batch batch;
    bool ready = false;
    std::exception_ptr error;
};

Loader::Loader(const PreparedData& data, std::vector<int> chunks, LoaderOptions options)
    : data_(data), chunks_(std::move(chunks)), opt_(options) {
    GNET_CHECK(opt_.batch > 0, "batch size must be positive, got " + std::to_string(opt_.batch));
    GNET_CHECK(opt_.workers > 0 && opt_.prefetch > 0, "loader needs at least one worker and slot");
    for (int c : chunks_)
        GNET_CHECK(c >= 0 && c < data_.num_chunks(), "loader chunk index out of range");
    GNET_CHECK(opt_.sample_weights.empty() || opt_.sample_weights.size() == chunks_.size(),
               "loader: one sample weight per chunk is needed");
    const size_t x_floats = size_t(opt_.batch) * kChunkFloats;
    const size_t y_floats = size_t(opt_.batch) * size_t(data_.num_genres());
    for (int s = 0; s < opt_.prefetch; ++s) {
        auto slot = std::make_unique<Slot>();
        if (opt_.pinned) {
            slot->pinned_x = PinnedBuffer(x_floats * sizeof(float));
            slot->pinned_y = PinnedBuffer(y_floats * sizeof(float));
            slot->x = slot->pinned_x.as<float>();
            slot->y = slot->pinned_y.as<float>();
        } else {
            slot->host_x.resize(x_floats);
            slot->host_y.resize(y_floats);
            slot->x = slot->host_x.data();
            slot->y = slot->host_y.data();
        }
        slots_.push_back(std::move(slot));
    }
}

Loader::~Loader() {
    stop_workers();
}

int Loader::batches_per_epoch() const {
    return (size() + opt_.batch - 1) / opt_.batch;
}

std::vector<int> Loader::epoch_order(int epoch) const {
    std::vector<int> order = chunks_;
    if (!opt_.sample_weights.empty()) {
        std::vector<int> draw = weighted_order(opt_.sample_weights, opt_.seed, epoch);
        for (size_t i = 0; i < draw.size(); ++i)
            order[i] = chunks_[size_t(draw[i])];
    } else if (opt_.shuffle) {
        std::vector<int> perm = shuffled_order(size(), opt_.seed, epoch);
        for (size_t i = 0; i < perm.size(); ++i)
            order[i] = chunks_[size_t(perm[i])];
    }
    return order;
}

void Loader::stop_workers() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_)
        t.join();
    threads_.clear();
}

void Loader::start_epoch(int epoch) {
    stop_workers();
    order_ = epoch_order(epoch);
    epoch_ = epoch;
    stop_ = false;
    next_to_fill_ = 0;
    released_ = 0;
    held_ = -1;
    for (auto& s : slots_) {
        s->ready = false;
        s->error = nullptr;
    }
    int n = std::min(opt_.workers, std::max(1, batches_per_epoch()));
    for (int i = 0; i < n; ++i)
        threads_.emplace_back([this] { worker_loop(); });
}

void Loader::worker_loop() {
    const int total = batches_per_epoch();
    const int K = int(slots_.size());
    for (;;) {
        int b;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] {
                return stop_ || next_to_fill_ >= total || next_to_fill_ < released_ + K;
            });
            if (stop_ || next_to_fill_ >= total) return;
            b = next_to_fill_++;
        }
        Slot& slot = *slots_[size_t(b % K)];
        std::exception_ptr error;
        try {
            fill(slot, b);
        } catch (...) {
            error = std::current_exception();
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            slot.error = error;
            slot.ready = true;
        }
        cv_.notify_all();
    }
}

void Loader::fill(Slot& slot, int b) {
    const int G = data_.num_genres();
    const int first = b * opt_.batch;
    const int n = std::min(opt_.batch, size() - first);
    slot.batch.index = b;
    slot.batch.n = n;
    slot.batch.x = slot.x;
    slot.batch.y = slot.y;
    slot.batch.chunks.assign(order_.begin() + first, order_.begin() + first + n);
    for (int i = 0; i < n; ++i) {
        int c = order_[size_t(first + i)];
        float* x = slot.x + size_t(i) * kChunkFloats;
        data_.read_chunk(c, x);
        std::copy_n(&data_.targets[size_t(c) * size_t(G)], G, slot.y + size_t(i) * size_t(G));
        if (opt_.spec_augment)
            spec_augment(x, opt_.augment,
                         mix_seed(opt_.seed, uint64_t(epoch_), uint64_t(first + i) + 1));
    }
}

const Batch* Loader::next() {
    GNET_CHECK(epoch_ >= 0, "Loader::next() before start_epoch()");
    const int K = int(slots_.size());
    std::unique_lock<std::mutex> lock(mu_);
    if (held_ >= 0) {
        slots_[size_t(held_ % K)]->ready = false;
        released_ = held_ + 1;
        lock.unlock();
        cv_.notify_all();
        lock.lock();
    }
    const int want = held_ + 1;
    if (want >= batches_per_epoch()) {
        held_ = want;  // epoch done; further calls keep returning nullptr
        return nullptr;
    }
    Slot& slot = *slots_[size_t(want % K)];
    cv_.wait(lock, [&] { return slot.ready; });
    held_ = want;
    if (slot.error) {
        std::exception_ptr e = slot.error;
        slot.error = nullptr;
        std::rethrow_exception(e);
    }
    return &slot.batch;
}

}  // namespace gnet
