// Loader: batches of spectrograms from a PreparedData subset, read by threads ahead of use.
//
// - What a sample is: one chunk row of the manifest. WindowMode::Fixed gives the chunk itself;
//   WindowMode::Random (sharded data only) gives a 10 s window at a uniformly drawn frame of the
//   chunk's span (the stretch of its track's audio around it, train/shards.h), clipped and scaled
//   exactly as a chunk is; the start is a pure function of (seed, epoch, chunk), so it does not
//   depend on the rank count or the threads (window_start()).
// - Order: a pure function of (seed, epoch, rank, ranks): resuming at epoch e needs no saved
//   loader state. The epoch's read order is the *stream*: for chunk files, all chunks in
//   shuffled_order(n, seed, epoch) (random access to one file each); for shards, the shards in
//   shuffled_order(shards, seed, epoch) and, within a shard, its chunks in file order, so that
//   every span is read once, sequentially, CRC-checked. With `ranks` > 1 the stream is cut into
//   `ranks` contiguous parts of ceil(n / ranks) samples (the last padded by wrapping round to
//   the stream's start, as PyTorch's DistributedSampler pads), and rank r reads only part r: every
//   rank has the same number of batches and reads only its own shards. For shards, the samples of
//   a part leave through a shuffle buffer of `shuffle_buffer` samples (shuffle_buffer_order()),
//   the WebDataset way: shard order shuffled across, buffer shuffled within. shuffle = false
//   reads `chunks` in the given order (evaluation). The last batch is smaller when the batch size
//   does not divide the part.
// - Memory: bounded whatever the data set's size: `prefetch` batch slots (x (n, 1, 128, 431) and
//   y (n, G), float32, page-locked when `pinned`), plus at most shuffle_buffer + batch * prefetch
//   samples read but not yet batched, plus one span per reading thread (shards). Reading waits
//   for room.
// - Threads: `workers` reading threads, chunk files dealt position by position, shards run by
//   run (a run: the consecutive stream positions that come from one span, which one thread reads
//   and CRC-checks once); one more thread assembles batches, so reading and batching overlap the
//   caller's step. Which thread reads what never changes a batch.
// - Balanced sampling: with `sample_weights` (one per chunk of the subset; chunk files, one rank),
//   an epoch is instead as many draws WITH replacement, chunk i with probability w_i / sum(w)
//   (rare genres are seen more often), also a pure function of (seed, epoch).
// - SpecAugment (training only): per sample, `time_masks` masks of a uniform width in
//   [0, time_width] frames and `freq_masks` masks of width in [0, freq_width] mel bands, at uniform
//   positions, set to 0 (the spectrogram's floor after min-max scaling). The random numbers of a
//   sample come from its own generator seeded by (seed, epoch, position in the epoch), so the
//   result does not depend on which thread reads it.
// - Errors while reading (a missing or malformed .npy, a truncated or corrupt shard, named) are
//   re-thrown by next() for the batch that holds the sample; later batches continue.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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

// Auto is what a user asks for without choosing: Random where the data allows it (shards),
// Fixed otherwise (chunk files); resolve_window_mode() turns it into one of the two before a
// Loader sees it.
enum class WindowMode { Fixed, Random, Auto };
const char* window_mode_name(WindowMode m);             // "fixed" | "random" | "auto"
WindowMode parse_window_mode(const std::string& text);  // UsageError otherwise
struct PreparedData;
WindowMode resolve_window_mode(WindowMode m, const PreparedData& data);

struct LoaderOptions {
    int batch = 32;
    bool shuffle = true;
    uint64_t seed = 0;
    int workers = 2;   // reading threads
    int prefetch = 2;  // batch slots: the batch in use plus prefetch-1 being filled
    bool pinned = false;
    bool spec_augment = false;
    SpecAugmentOptions augment;
    WindowMode windows = WindowMode::Fixed;  // Fixed or Random (Auto: resolve it first)
    int shuffle_buffer = 512;                // samples (shards, shuffle on); 1 = stream order
    int rank = 0, ranks = 1;  // data-parallel training: this process's part of every epoch
    std::vector<double> sample_weights;  // empty: every chunk once per epoch; else see above
};

struct Batch {
    int index = 0;             // batch number within the epoch
    int n = 0;                 // samples in this batch (<= batch size)
    const float* x = nullptr;  // (n, 1, 128, 431)
    const float* y = nullptr;  // (n, G)
    std::vector<int> chunks;   // the PreparedData chunk index of every sample
    // Where each sample starts in its track, in seconds (a fixed chunk: its start_s; a random
    // window: anywhere its span allows).
    std::vector<double> start_s;
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

// The first frame (in its shard) of the window a sample of `chunk` reads: the chunk's own frame
// for Fixed, uniform over its span for Random (chunk files: Fixed only, else a UsageError).
int64_t window_start(const PreparedData& data, int chunk, WindowMode mode, uint64_t seed,
                     int epoch);

// The emission order of a shuffle buffer of `buffer` slots over a stream of n items (positions
// 0..n-1): the first `buffer` items fill it; each later arrival sends out a uniformly chosen
// occupant and takes its slot; at the end the rest leave in random order. Item e of the output
// was read at most buffer - 1 positions after it: the loader's memory bound rests on that.
std::vector<int> shuffle_buffer_order(int n, int buffer, uint64_t seed);

// The chunks an epoch reads, in read order, for one rank (its part, padded): see above.
// Touches no spectrogram: planning a 1-million-chunk epoch reads only the manifest.
std::vector<int> epoch_stream(const PreparedData& data, const std::vector<int>& chunks,
                              const LoaderOptions& options, int epoch);

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

    // Samples per epoch on this rank (its part of the subset, padded).
    int size() const { return part_; }
    int batches_per_epoch() const;
    const LoaderOptions& options() const { return opt_; }
    // The chunk order in which an epoch's batches deliver samples (indices into data.chunks).
    std::vector<int> epoch_order(int epoch) const;

  private:
    struct Slot;
    struct Sample;
    void stop_workers();
    int reader_count() const;
    void read_loop(int reader);
    void fill_loop();
    void fill(Slot& slot, int batch_index);
    void read_sample(int pos, Sample& out, std::vector<float>& span_frames, int& span_loaded);

    const PreparedData& data_;
    std::vector<int> chunks_;
    LoaderOptions opt_;
    int part_ = 0;               // samples per epoch on this rank
    int capacity_ = 0;           // samples read ahead of the batches, at most
    std::vector<int> span_run_;  // per stream position: its run of one span (shards)
    bool weighted_ = false;      // balanced sampling: the epoch is sample_weights' draws
    std::vector<std::unique_ptr<Slot>> slots_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
    int epoch_ = -1;
    std::vector<int> stream_;                       // chunk per read position of the current epoch
    std::vector<int> emit_;                         // read position per output position
    std::map<int, std::unique_ptr<Sample>> cache_;  // read, not yet batched, by read position
    int consumed_ = 0;                              // samples batched so far
    int next_to_fill_ = 0;                          // next batch the filler takes
    int released_ = 0;                              // batches the caller is done with
    int held_ = -1;                                 // batch the caller holds, -1 = none
};

}  // namespace gnet
