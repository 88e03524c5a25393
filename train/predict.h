// Tagging tracks with a trained model: decode -> resample -> 10 s chunks (a track shorter than one
// chunk is zero-padded into one) -> spectrograms -> ResNet18 in eval mode -> sigmoid per genre ->
// aggregation over the track's chunks (mean or max) -> genres sorted by probability.
//
// Windows of one chunk length start every `hop_s` seconds (default: the chunk length, i.e.
// non-overlapping chunks; a shorter hop gives overlapping windows, each scored, all aggregated).
// After the last whole window, one more window (zero-padded) is scored when at least half of it is
// audio; a track shorter than one chunk is one zero-padded window, and when it is shorter than
// half a chunk it is flagged mostly_padding and no genre is marked predicted. Segment k covers
// [k * hop_s, min(k * hop_s + chunk, duration)).
//
// With `embeddings`, every window's pooled ResNet18 features (512 floats, the input of the
// classifier head) come back too, and the track's embedding is their mean.
//
// Streaming, with bounded memory: `jobs` threads decode tracks block by block (at most `batch`
// chunks per block) into a queue that holds at most 2 x batch chunks of audio; the scoring thread
// batches chunks across tracks (up to `batch` per forward pass, so the GPU sees full batches even
// for short tracks) and keeps only each track's chunk scores. A two-hour file costs no more
// memory than a song. A file that cannot be read is reported through on_error and the others
// still go through; results and errors arrive in input order.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/device.h"

namespace gnet {

enum class Aggregation { Mean, Max };
Aggregation parse_aggregation(const std::string& text);  // "mean" | "max"; else UsageError
const char* aggregation_name(Aggregation a);

struct GenreScore {
    std::string genre;
    float probability = 0;
    bool predicted = false;  // probability >= the genre's decision threshold
};

struct SegmentPrediction {
    double start_s = 0, end_s = 0;
    std::vector<GenreScore> genres;  // sorted by probability, highest first
    std::vector<float> embedding;    // (512) with PredictOptions::embeddings, else empty
};

struct TrackPrediction {
    std::string file;
    double duration_s = 0;
    int chunks = 0;
    bool padded = false;          // shorter than one chunk, zero-padded
    bool mostly_padding = false;  // shorter than half a chunk: scored, but nothing predicted
    Aggregation strategy = Aggregation::Mean;
    std::vector<GenreScore> genres;           // every genre, sorted by probability
    std::vector<SegmentPrediction> segments;  // one per window
    double hop_s = 0;                         // seconds between window starts
    std::vector<float> embedding;             // (512): mean of the windows' (with embeddings)
};

struct PredictOptions {
    Aggregation strategy = Aggregation::Mean;
    int batch = 32;           // chunks per forward pass
    int jobs = 0;             // decoding threads; 0 = all hardware threads
    float threshold = -1;     // >= 0: one threshold for every genre, overriding the checkpoint's
    double hop_s = 0;         // seconds between window starts, in (0, chunk]; 0 = the chunk length
    bool embeddings = false;  // also the pooled features of every window
};

// Files and folders -> the audio files to tag: files as given (in order), folders searched
// recursively for audio extensions (sorted). A path that does not exist goes to `missing` (an
// Error when missing is null).
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       std::vector<std::string>* missing = nullptr);

// Aggregates per-chunk probabilities (chunks x G, row-major) into one score per genre.
std::vector<float> aggregate_chunks(const std::vector<float>& probs, int chunks, int G,
                                    Aggregation a);
// Scores sorted by probability (ties by genre order), marked against the thresholds.
std::vector<GenreScore> rank_genres(const std::vector<float>& probs,
                                    const std::vector<std::string>& genres,
                                    const std::vector<float>& thresholds);

class Tagger {
  public:
    Tagger(const Checkpoint& checkpoint, Device device, const PredictOptions& options);
    ~Tagger();
    Tagger(const Tagger&) = delete;
    Tagger& operator=(const Tagger&) = delete;

    // Results arrive through on_result in input order; failures through on_error(file, reason).
    void tag_files(const std::vector<std::string>& files,
                   const std::function<void(const TrackPrediction&)>& on_result,
                   const std::function<void(const std::string&, const std::string&)>& on_error);

    const std::vector<std::string>& genres() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace gnet
