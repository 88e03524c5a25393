// A prepared data folder (the output of `gnet prepare`), loaded and validated. Two layouts:
//
// Packed shards (DataLayout::Shards, what prepare writes; train/shards.h, docs/data.md):
//   DATA_DIR/genres.txt     genre names, one per line, in column order
//   DATA_DIR/manifest.csv   header shard,frame,split,track,start_s,<genre1>,...,<genreG>; one row
//                           per chunk: shard = .npy path relative to DATA_DIR, frame = the first of
//                           the chunk's 431 frames in that shard, then as below
//   DATA_DIR/shards/index.csv, DATA_DIR/shards/shard-*.npy   spans of whole tracks (shards.h)
// Chunk files (DataLayout::ChunkFiles, folders prepared before shards, or --layout chunks):
//   DATA_DIR/manifest.csv   header file,split,track,start_s,<genre1>,...,<genreG>; one row per
//                           chunk: file = .npy path relative to DATA_DIR, split = train | val,
//                           track = the audio path (all chunks of a track share it), start_s =
//                           integer seconds, then 0/1 per genre. Fields may be CSV-quoted.
//   DATA_DIR/train/*.npy, DATA_DIR/val/*.npy   float32 [128, 431] log-mel spectrograms
//
// Loading checks the manifest completely (header = genres.txt, one known split, an integer start,
// 0/1 cells, a track never in both splits, the same labels on every chunk of a track, no file or
// shard position listed twice, every chunk inside a span of its own track); every error names
// manifest.csv:LINE or index.csv:LINE. Each shard's header and size are checked at load (one read
// of 128 bytes per shard; a truncated shard is an Error naming it); spectrograms are read lazily:
// a missing file, a wrong shape, a CRC mismatch or a non-finite value is an Error naming the file
// when it is read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/shards.h"

namespace gnet {

constexpr int kMelBands = 128;  // spectrogram height
constexpr int kFrames = 431;    // spectrogram width (10 s at 22050 Hz, hop 512, centred)
constexpr int kChunkFloats = kMelBands * kFrames;

enum class Split { Train, Val };
const char* split_name(Split s);
// "train" | "val"; anything else is a UsageError.
Split parse_split(const std::string& text);

enum class DataLayout { ChunkFiles, Shards };

struct ChunkEntry {
    std::string file;  // relative to the data folder (Shards: the shard's file)
    Split split = Split::Train;
    int track = 0;  // index into PreparedData::tracks
    int start_s = 0;
    int line = 0;       // manifest.csv line, for messages
    int span = -1;      // Shards: index into PreparedData::spans
    int64_t frame = 0;  // Shards: first frame of the chunk in its shard
};

// Shards: a stretch of one track's continuous audio in one shard (shards/index.csv).
struct SpanEntry {
    int shard = 0;
    int64_t frame = 0;   // first frame in the shard
    int64_t frames = 0;  // >= 431
    uint32_t crc32 = 0;
    int track = 0;  // index into PreparedData::tracks
    int line = 0;   // index.csv line
};

struct PreparedData {
    std::string dir;
    DataLayout layout = DataLayout::ChunkFiles;
    std::vector<std::string> genres;
    std::vector<std::string> tracks;  // distinct track ids in first-appearance order
    std::vector<ChunkEntry> chunks;   // manifest order
    std::vector<float> targets;       // (chunks, G) 0/1
    // Shards only: files relative to dir, their headers, and the spans in index order.
    std::vector<std::string> shard_files;
    std::vector<ShardHeader> shard_headers;
    std::vector<SpanEntry> spans;
    float top_db = 80.f;  // the clip applied to each window of dB values (SpectrogramConfig)

    int num_genres() const { return int(genres.size()); }
    int num_chunks() const { return int(chunks.size()); }
    // Chunk indices of one split, in manifest order.
    std::vector<int> split_chunks(Split s) const;
    std::string chunk_path(int chunk) const;
    // Reads chunk `chunk` into out[kChunkFloats]; an Error naming the file when it is missing,
    // malformed, not float32 [128, 431] or holds a NaN or an infinity. Shards: the chunk's block
    // of its span, clipped and scaled (no CRC check: that needs the whole span, see read_span).
    void read_chunk(int chunk, float* out) const;
    // Shards: the frames of span `span`, (frames, 128) frame-major dB, CRC-checked.
    void read_span(int span, std::vector<float>& frames) const;
    std::string shard_path(int shard) const;
};

PreparedData load_prepared(const std::string& dir);

// Writes shards/index.csv rows and reads them back: used by prepare and by tests that build
// synthetic sharded folders.
std::string span_index_header();
std::string span_index_row(const std::string& shard_file, const SpanEntry& span,
                           const std::string& track);

// Tracks of a subset of chunks, renumbered 0..T-1 in first-appearance order: the mapping that
// aggregate_tracks() (train/metrics.h) takes.
struct TrackGroups {
    std::vector<int> chunk_track;  // per chunk of the subset: 0..T-1
    std::vector<int> tracks;       // per local track: index into PreparedData::tracks
    int count() const { return int(tracks.size()); }
};
TrackGroups group_by_track(const PreparedData& data, const std::vector<int>& chunks);

// Track-level targets (T, G) for a subset: the labels of each track's first chunk (loading checked
// that every chunk of a track carries the same labels).
std::vector<float> track_targets(const PreparedData& data, const std::vector<int>& chunks,
                                 const TrackGroups& groups);

// Positive weights for BCE from training frequencies: negatives/positives per genre over `chunks`,
// clamped to [lo, hi]; a genre without positives gets 1.
std::vector<float> positive_weights(const PreparedData& data, const std::vector<int>& chunks,
                                    float lo = 1.f, float hi = 100.f);

// Weights for balanced sampling (train/loader.h): chunk i of `chunks` gets the largest of
// 1 / (training tracks carrying g) over its genres g, so a chunk of a rare genre is drawn as often
// as one of a common genre; a chunk without any genre gets the smallest weight any chunk has.
// Tracks, not chunks, are counted, and each weight is divided by its track's chunk count, so a
// long track is not drawn more often than a short one.
std::vector<double> balanced_sample_weights(const PreparedData& data,
                                            const std::vector<int>& chunks);

}  // namespace gnet
