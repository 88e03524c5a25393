// gnet prepare: a folder of music -> a training set of spectrogram chunks.
//
// Every labelled track is decoded, resampled to 22050 Hz and cut into 10 s chunks (the remainder is
// dropped from the chunks). Layout::Shards (the default) packs the tracks' spectrograms into
// DATA_DIR/shards/shard-NNNNN.npy with an index (train/shards.h): per track its kept chunks'
// blocks and, for a track kept whole, its remainder's frames, in dB before the per-window
// scaling, so that training can cut random windows as well as the fixed chunks; float32 or
// float16. Layout::ChunkFiles writes each chunk's [128, 431] spectrogram as
// DATA_DIR/<split>/<track>_<chunk>.npy, as gnet did before shards.
// A track longer than max_chunks_per_track chunks keeps that many, spread evenly over the track
// (so a 30-minute file does not outweigh 180 songs). The split is by track (train/split.h); an
// empty validation or training split is an error. DATA_DIR also gets genres.txt, manifest.csv
// (one row per chunk: file or shard + frame, split, track, start_s, 0/1 per genre) and
// prepare.json (every parameter used, every file found but not used and every skipped track,
// with reasons).
//
// Memory is bounded whatever the collection's size: tracks are decoded a few at a time, shards
// are written track by track in track order (a reorder window of a few tracks per thread holds
// the ones that finish early), and what stays in memory per track is its metadata.
//
// Run-folder safety: the run holds an exclusive lock on DATA_DIR (a second prepare, with or
// without --force, is refused while it runs) and builds everything in its own staging folder
// DATA_DIR/.partial-<pid>; only at the end is the new data set moved in (manifest.csv last), after
// the old one (--force) is moved aside. An interrupted run (Ctrl-C, kill, full disk) leaves the
// old data set, or none, never a mixture; the next run clears the leftovers and starts again
// without --force. Undecodable or too-short inputs are skipped; a failure to WRITE an output
// (full disk, permissions) stops the run.
//
// Work split: `jobs` threads decode and resample tracks. On the CPU each of them also computes its
// tracks' spectrograms (one FFTW plan per thread); with the GPU they hand chunks to the calling
// thread, which batches chunks of several tracks into one cuFFT call. A bad track (corrupt,
// unsupported, shorter than one chunk) is skipped with its reason; the run fails only when no
// track is usable.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "nn/device.h"
#include "train/dataset.h"
#include "train/shards.h"

namespace gnet {

struct PrepareOptions {
    std::string audio_dir;
    std::string out_dir;
    std::string labels_csv;  // empty: one sub-folder per genre
    double val_fraction = 0.2;
    uint64_t seed = 0;
    Device device = Device::CPU;
    int jobs = 0;                   // decoding threads; 0 = all hardware threads
    int gpu_batch = 32;             // chunks per cuFFT call
    bool force = false;             // rebuild an existing DATA_DIR
    int max_chunks_per_track = 30;  // 0 = keep every chunk
    DataLayout layout = DataLayout::Shards;
    ShardDtype shard_dtype = ShardDtype::F32;
    int64_t shard_bytes = int64_t(256) << 20;  // a shard is closed before it grows past this
};

struct SkippedTrack {
    std::string path;
    std::string reason;
};

// A track whose chunks were thinned to max_chunks_per_track.
struct CappedTrack {
    std::string path;
    int64_t chunks = 0, kept = 0;
};

struct PrepareSummary {
    std::vector<std::string> genres;
    int64_t tracks_total = 0;
    int64_t tracks_used = 0;
    std::vector<SkippedTrack> skipped;   // labelled but undecodable or too short
    std::vector<SkippedTrack> not_used;  // found but not labelled (see train/labels.h)
    std::vector<CappedTrack> capped;
    int64_t chunks_train = 0, chunks_val = 0;
    int64_t shards = 0, shard_bytes = 0;  // Layout::Shards: files written, their total size
    int64_t tracks_train = 0, tracks_val = 0;
    // per genre: tracks and chunks with that label in each split
    std::vector<int64_t> genre_tracks_train, genre_tracks_val, genre_chunks_train, genre_chunks_val;
    double audio_seconds = 0;  // decoded audio, all used tracks
    double wall_seconds = 0;
    std::vector<std::string> warnings;  // label warnings (rows for missing files, ...), capped
    std::string previous;               // "" or what happened to what DATA_DIR held before
};

struct PrepareProgress {
    int64_t done = 0;
    int64_t total = 0;
};

// Throws gnet::Error for unusable input (no labels, nothing decodable, an empty split, DATA_DIR
// holding a data set without force, DATA_DIR locked), for write failures, and Interrupted
// (train/interrupt.h) on Ctrl-C. `on_skip` is told about each skipped track as it happens;
// `on_progress` about progress.
PrepareSummary prepare_dataset(const PrepareOptions& opt,
                               const std::function<void(const SkippedTrack&)>& on_skip,
                               const std::function<void(const PrepareProgress&)>& on_progress);

// The per-genre table and totals, as printed by `gnet prepare`.
void print_prepare_report(const PrepareSummary& s, std::ostream& out);

}  // namespace gnet
