// Loader: batches of spectrograms from a PreparedData subset, read by worker threads ahead of use.
//
// - Order: epoch e visits the chunks in shuffled_order(n, seed, e) (or as given, shuffle off), a
//   pure function of (seed, epoch): resuming at epoch e needs no saved loader state. The last
//   batch of an epoch is smaller when the batch size does not divide the count; every chunk is
//   visited exactly once per epoch. With `sample_weights` (one per chunk of the subset), an epoch
//   is instead as many draws WITH replacement, chunk i with probability w_i / sum(w) (balanced
//   sampling: rare genres are seen more often), also a pure function of (seed, epoch).
// - Memory: `prefetch` batch slots (x (n, 1, 128, 431) and y (n, G), float32), page-locked
//   (PinnedBuffer) when `pinned`, so host->device copies from them run at full bandwidth and could
//   be asynchronous; plain host memory otherwise. Workers fill the next batches while the caller
//   computes on the current one. (The trainer's copy into the model is part of train_step, which
//   waits for the step: it does not overlap the GPU's work.)
// - SpecAugment (training only): per sample, `time_masks` masks of a uniform width in
//   [0, time_width] frames and `freq_masks` masks of width in [0, freq_width] mel bands, at uniform
//   positions, set to 0 (the spectrogram's floor after min-max scaling). The random numbers of a
//   sample come from its own generator seeded by (seed, epoch, position in the epoch), so the
//   result does not depend on which worker reads it.
// - Errors in a worker (a missing or malformed .npy) are re-thrown by next() in the caller.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "train/dataset.h"

namespace gnet {

struct SpecAugmentOptions {
    int time_masks = 2;
    int time_width = 40;  // frames (of 431)
    int freq_masks = 2;
    int freq_width = 16;  // mel bands (of 128)
};

struct LoaderOptions {
    int batch = 32;
    bool shuffle = true;
    uint64_t seed = 0;
    int workers = 2;
    int prefetch = 2;  // batch slots: the batch in use plus prefetch-1 being filled
    bool pinned = false;
    bool spec_augment = false;
    SpecAugmentOptions augment;
    std::vector<double> sample_weights;  // empty: every chunk once per epoch; else see above
};

struct Batch {
    int index = 0;             // batch number within the epoch
    int n = 0;                 // samples in this batch (<= batch size)
    const float* x = nullptr;  // (n, 1, 128, 431)
    const float* y = nullptr;  // (n, G)
    std::vector<int> chunks;   // the PreparedData chunk index of every sample
};

// 0..n-1 shuffled by Fisher-Yates driven by std::mt19937_64 seeded from (seed, epoch); the same on
// every standard library (no std::uniform_int_distribution).
std::vector<int> shuffled_order(int n, uint64_t seed, int epoch);

// n indices in [0, weights.size()) drawn with replacement, index i with probability
// weights[i] / sum; a pure function of (weights, seed, epoch). Weights must be >= 0, sum > 0.
std::vector<int> weighted_order(const std::vector<double>& weights, uint64_t seed, int epoch);

// Applies SpecAugment to one (128, 431) spectrogram in place with the given generator seed.
void spec_augment(float* x, const SpecAugmentOptions& opt, uint64_t sample_seed);

// A 64-bit mix of (a, b, c) (splitmix64 steps), used to derive independent seeds.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

class Loader {
  public:
    // `chunks`: the subset (indices into data.chunks) to iterate; `data` must outlive the loader.
    Loader(const PreparedData& data, std::vector<int> chunks, LoaderOptions options);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    // Starts (or restarts) reading epoch `epoch`; any batch still held becomes invalid.
    void start_epoch(int epoch);
    // The next batch of the current epoch, or nullptr when the epoch is done. The batch (and its
    // memory) stays valid until the next call of next() or start_epoch(); asynchronous copies out
    // of it must be complete by then.
    const Batch* next();

    int size() const { return int(chunks_.size()); }
    int batches_per_epoch() const;
    const LoaderOptions& options() const { return opt_; }
    // The chunk order of an epoch (indices into data.chunks).
    std::vector<int> epoch_order(int epoch) const;

  private:
    struct Slot;
    void stop_workers();
    void worker_loop();
    void fill(Slot& slot, int batch_index);

    const PreparedData& data_;
    std::vector<int> chunks_;
    LoaderOptions opt_;
    std::vector<std::unique_ptr<Slot>> slots_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
    int epoch_ = -1;
    std::vector<int> order_;  // chunk indices of the current epoch
    int next_to_fill_ = 0;    // next batch a worker takes
    int released_ = 0;        // batches the caller is done with
    int held_ = -1;           // batch the caller holds, -1 = none
};

}  // namespace gnet
