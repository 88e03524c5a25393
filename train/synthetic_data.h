// A small synthetic prepared data folder in `gnet prepare`'s format (genres.txt, manifest.csv,
// train/*.npy, val/*.npy, or with DataLayout::Shards shards/ + index.csv holding the same images
// as dB values), for tests and benchmarks that must not depend on real audio.
// Genre g lights up its own band of mel rows (a learnable signal) over uniform noise; every track
// has 1..2 genres, and all chunks of a track share its labels. Deterministic in `seed`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/dataset.h"
#include "train/shards.h"

namespace gnet {

struct SyntheticDataOptions {
    std::vector<std::string> genres = {"rock", "jazz", "pop"};
    int train_tracks = 4;
    int val_tracks = 2;
    int chunks_per_track = 2;
    uint64_t seed = 0;
    DataLayout layout = DataLayout::ChunkFiles;
    ShardDtype shard_dtype = ShardDtype::F32;
    int64_t shard_bytes = int64_t(64) << 20;
    int extra_frames = 0;  // shards: frames after each track's last chunk (a remainder)
};

void write_synthetic_prepared(const std::string& dir, const SyntheticDataOptions& options = {});

}  // namespace gnet
