// Train/validation split by track (never by chunk: all chunks of a track land on one side).
//
// Seeded and reproducible (std::mt19937_64 with our own Fisher-Yates, so the split does not depend
// on the standard library's shuffle). Roughly stratified: every genre with at least two tracks gets
// at least one validation track (while keeping at least one for training), then tracks are added
// to validation in shuffled order while one of their genres is below its share
// (val_fraction x its tracks), and finally in shuffled order until val_fraction of all tracks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gnet {

// labels: one 0/1 vector per track. Returns, per track, true when it goes to validation.
std::vector<bool> split_tracks(const std::vector<std::vector<uint8_t>>& labels, double val_fraction,
                               uint64_t seed);

// The permutation 0..n-1 shuffled by Fisher-Yates from a mt19937_64 seeded with `seed`.
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed);

}  // namespace gnet
