#include "train/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "audio/spectrogram_config.h"
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

// Thrown inside the batch filler when start_epoch() or the destructor stops it mid-batch.
struct FillStopped {};

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

const char* window_mode_name(WindowMode m) {
    switch (m) {
        case WindowMode::Fixed:
            return "fixed";
        case WindowMode::Random:
            return "random";
        case WindowMode::Auto:
            return "auto";
    }
    return "?";
}

WindowMode parse_window_mode(const std::string& text) {
    if (text == "fixed") return WindowMode::Fixed;
    if (text == "random") return WindowMode::Random;
    if (text == "auto") return WindowMode::Auto;
    throw UsageError("unknown window mode '" + text + "' (expected auto, fixed or random)");
}

WindowMode resolve_window_mode(WindowMode m, const PreparedData& data) {
    if (m != WindowMode::Auto) return m;
    return data.layout == DataLayout::Shards ? WindowMode::Random : WindowMode::Fixed;
}

int64_t window_start(const PreparedData& data, int chunk, WindowMode mode, uint64_t seed,
                     int epoch) {
    const ChunkEntry& c = data.chunks[size_t(chunk)];
    if (data.layout != DataLayout::Shards) {
        if (mode == WindowMode::Random)
            throw UsageError(data.dir +
                             ": random windows need a data set prepared as shards (this one "
                             "holds one .npy per chunk); run gnet prepare again");
        return 0;
    }
    if (mode == WindowMode::Fixed) return c.frame;
    const SpanEntry& s = data.spans[size_t(c.span)];
    std::mt19937_64 rng(mix_seed(seed, uint64_t(epoch), (uint64_t(chunk) << 1) | 1));
    return s.frame + int64_t(uniform_upto(rng, uint64_t(s.frames - kFrames)));
}

std::vector<int> shuffle_buffer_order(int n, int buffer, uint64_t seed) {
    std::vector<int> out;
    out.reserve(size_t(std::max(n, 0)));
    const size_t K = size_t(std::max(buffer, 1));
    std::vector<int> buf;
    buf.reserve(std::min(K, size_t(std::max(n, 0))));
    std::mt19937_64 rng(seed);
    for (int i = 0; i < n; ++i) {
        if (buf.size() < K) {
            buf.push_back(i);
            continue;
        }
        size_t j = size_t(uniform_upto(rng, K - 1));
        out.push_back(buf[j]);
        buf[j] = i;
    }
    while (!buf.empty()) {
        size_t j = size_t(uniform_upto(rng, buf.size() - 1));
        out.push_back(buf[j]);
        buf[j] = buf.back();
        buf.pop_back();
    }
    return out;
}

std::vector<int> epoch_stream(const PreparedData& data, const std::vector<int>& chunks,
                              const LoaderOptions& opt, int epoch) {
    const int n = int(chunks.size());
    std::vector<int> stream;
    if (!opt.shuffle) {
        stream = chunks;
    } else if (data.layout == DataLayout::Shards) {
        // Shards in a seeded order; within a shard, its chunks in file (frame) order.
        const int S = int(data.shard_files.size());
        std::vector<std::vector<int>> by_shard(size_t(std::max(S, 0)));
        for (int c : chunks)
            by_shard[size_t(data.spans[size_t(data.chunks[size_t(c)].span)].shard)].push_back(c);
        stream.reserve(size_t(n));
        for (int s : shuffled_order(S, opt.seed, epoch)) {
            std::vector<int>& v = by_shard[size_t(s)];
            std::stable_sort(v.begin(), v.end(), [&](int a, int b) {
                return data.chunks[size_t(a)].frame < data.chunks[size_t(b)].frame;
            });
            stream.insert(stream.end(), v.begin(), v.end());
        }
    } else {
        std::vector<int> perm = shuffled_order(n, opt.seed, epoch);
        stream.resize(size_t(n));
        for (int i = 0; i < n; ++i)
            stream[size_t(i)] = chunks[size_t(perm[size_t(i)])];
    }
    if (opt.ranks == 1 || n == 0) return stream;
    // Rank r: positions [r * L, (r + 1) * L), wrapping round past the end.
    const int64_t L = (int64_t(n) + opt.ranks - 1) / opt.ranks;
    std::vector<int> part(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i)
        part[size_t(i)] = stream[size_t((int64_t(opt.rank) * L + i) % n)];
    return part;
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

// One sample read and not yet batched.
struct Loader::Sample {
    std::vector<float> x;  // (128, 431)
    double start_s = 0;
    std::exception_ptr error;
};

Loader::Loader(const PreparedData& data, std::vector<int> chunks, LoaderOptions options)
    : data_(data), chunks_(std::move(chunks)), opt_(options) {
    GNET_CHECK(opt_.batch > 0, "batch size must be positive, got " + std::to_string(opt_.batch));
    GNET_CHECK(opt_.workers > 0 && opt_.prefetch > 0, "loader needs at least one worker and slot");
    GNET_CHECK(opt_.shuffle_buffer > 0, "the shuffle buffer needs at least one slot");
    GNET_CHECK(opt_.ranks >= 1 && opt_.rank >= 0 && opt_.rank < opt_.ranks,
               "loader rank " + std::to_string(opt_.rank) + " of " + std::to_string(opt_.ranks));
    for (int c : chunks_)
        GNET_CHECK(c >= 0 && c < data_.num_chunks(), "loader chunk index out of range");
    GNET_CHECK(opt_.sample_weights.empty() || opt_.sample_weights.size() == chunks_.size(),
               "loader: one sample weight per chunk is needed");
    GNET_CHECK(opt_.sample_weights.empty() || opt_.ranks == 1,
               "loader: balanced sampling is not available with several ranks yet");
    weighted_ = !opt_.sample_weights.empty() && opt_.shuffle;
    GNET_CHECK(opt_.windows != WindowMode::Auto, "loader: resolve_window_mode() first");
    if (opt_.windows == WindowMode::Random && !chunks_.empty())
        window_start(data_, chunks_[0], opt_.windows, 0, 0);  // the layout check
    const int n = int(chunks_.size());
    part_ = opt_.ranks == 1 ? n : int((int64_t(n) + opt_.ranks - 1) / opt_.ranks);
    const bool buffered = opt_.shuffle && data_.layout == DataLayout::Shards;
    capacity_ = (buffered ? opt_.shuffle_buffer : 0) + opt_.batch * opt_.prefetch;
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
    if (weighted_) {
        // Balanced sampling: draws with replacement (any layout: shards are then read at random).
        std::vector<int> order = chunks_;
        std::vector<int> draw = weighted_order(opt_.sample_weights, opt_.seed, epoch);
        for (size_t i = 0; i < draw.size(); ++i)
            order[i] = chunks_[size_t(draw[i])];
        return order;
    }
    std::vector<int> stream = epoch_stream(data_, chunks_, opt_, epoch);
    if (!(opt_.shuffle && data_.layout == DataLayout::Shards)) return stream;
    std::vector<int> order;
    order.reserve(stream.size());
    for (int p : shuffle_buffer_order(int(stream.size()), opt_.shuffle_buffer,
                                      mix_seed(opt_.seed, uint64_t(epoch), uint64_t(opt_.rank))))
        order.push_back(stream[size_t(p)]);
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
    stream_ = weighted_ ? epoch_order(epoch) : epoch_stream(data_, chunks_, opt_, epoch);
    if (weighted_) {  // balanced draws are in random order already: no shuffle buffer
        emit_.resize(stream_.size());
        std::iota(emit_.begin(), emit_.end(), 0);
    } else if (opt_.shuffle && data_.layout == DataLayout::Shards) {
        emit_ = shuffle_buffer_order(int(stream_.size()), opt_.shuffle_buffer,
                                     mix_seed(opt_.seed, uint64_t(epoch), uint64_t(opt_.rank)));
    } else {
        emit_.resize(stream_.size());
        std::iota(emit_.begin(), emit_.end(), 0);
    }
    epoch_ = epoch;
    stop_ = false;
    cache_.clear();
    consumed_ = 0;
    next_to_fill_ = 0;
    released_ = 0;
    held_ = -1;
    for (auto& s : slots_) {
        s->ready = false;
        s->error = nullptr;
    }
    // Shards: a run of consecutive stream positions from one span is one reader's work (the
    // span is read and CRC-checked once), runs dealt round-robin over the readers.
    span_run_.assign(stream_.size(), 0);
    if (data_.layout == DataLayout::Shards)
        for (size_t pos = 1; pos < stream_.size(); ++pos)
            span_run_[pos] = span_run_[pos - 1] + (data_.chunks[size_t(stream_[pos])].span !=
                                                   data_.chunks[size_t(stream_[pos - 1])].span);
    const int readers = reader_count();
    for (int r = 0; r < readers; ++r)
        threads_.emplace_back([this, r] { read_loop(r); });
    threads_.emplace_back([this] { fill_loop(); });
}

void Loader::read_sample(int pos, Sample& out, std::vector<float>& span_frames, int& span_loaded) {
    const int c = stream_[size_t(pos)];
    const ChunkEntry& chunk = data_.chunks[size_t(c)];
    out.x.resize(size_t(kChunkFloats));
    out.start_s = chunk.start_s;
    try {
        if (data_.layout == DataLayout::ChunkFiles) {
            data_.read_chunk(c, out.x.data());
            return;
        }
        if (span_loaded != chunk.span) {
            span_loaded = -1;
            data_.read_span(chunk.span, span_frames);
            span_loaded = chunk.span;
        }
        const SpanEntry& s = data_.spans[size_t(chunk.span)];
        const int64_t start = window_start(data_, c, opt_.windows, opt_.seed, epoch_);
        const SpectrogramConfig cfg;
        out.start_s = chunk.start_s + double(start - chunk.frame) * cfg.hop / cfg.sample_rate;
        window_from_frames(span_frames.data(), start - s.frame, out.x.data(), data_.top_db,
                           data_.shard_path(s.shard));
    } catch (...) {
        out.error = std::current_exception();
    }
}

int Loader::reader_count() const {
    return std::min(opt_.workers, std::max(1, int(stream_.size())));
}

void Loader::read_loop(int reader) {
    const int readers = reader_count();
    const bool shards = data_.layout == DataLayout::Shards;
    std::vector<float> span_frames;
    int span_loaded = -1;
    // Chunk files: every readers-th position; shards: the positions of every readers-th run.
    // Either way a reader takes its positions in increasing order, so the one the batches wait
    // for is never behind another of its own that the read-ahead bound holds back.
    for (int pos = shards ? 0 : reader; pos < int(stream_.size()); pos += shards ? 1 : readers) {
        if (shards && span_run_[size_t(pos)] % readers != reader) continue;
        {
            // Read position pos only once it is among the next capacity_ samples the batches
            // need: the cache then never holds more than capacity_ samples, and the one the
            // filler waits for is always within reach (shuffle_buffer_order's bound).
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || pos < consumed_ + capacity_; });
            if (stop_) return;
        }
        auto sample = std::make_unique<Sample>();
        read_sample(pos, *sample, span_frames, span_loaded);
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (stop_) return;
            cache_.emplace(pos, std::move(sample));
        }
        cv_.notify_all();
    }
}

void Loader::fill_loop() {
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
        } catch (const FillStopped&) {
            return;  // stop_workers() during the batch
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
    slot.batch.chunks.resize(size_t(n));
    slot.batch.start_s.resize(size_t(n));
    std::exception_ptr error;
    for (int i = 0; i < n; ++i) {
        const int pos = emit_[size_t(first + i)];
        std::unique_ptr<Sample> sample;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || cache_.count(pos) > 0; });
            if (stop_) throw FillStopped{};
            auto it = cache_.find(pos);
            sample = std::move(it->second);
            cache_.erase(it);
            ++consumed_;
        }
        cv_.notify_all();
        const int c = stream_[size_t(pos)];
        slot.batch.chunks[size_t(i)] = c;
        slot.batch.start_s[size_t(i)] = sample->start_s;
        if (sample->error) {
            if (!error) error = sample->error;
            continue;
        }
        float* x = slot.x + size_t(i) * kChunkFloats;
        std::copy(sample->x.begin(), sample->x.end(), x);
        std::copy_n(&data_.targets[size_t(c) * size_t(G)], G, slot.y + size_t(i) * size_t(G));
        if (opt_.spec_augment)
            spec_augment(x, opt_.augment,
                         mix_seed(opt_.seed, uint64_t(epoch_),
                                  uint64_t(int64_t(opt_.rank) * part_ + first + i) + 1));
    }
    if (error) std::rethrow_exception(error);
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
