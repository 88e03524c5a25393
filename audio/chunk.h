// Cutting a mono track into non-overlapping chunks of equal length, from the start.
//
// What happens to the samples after the last whole chunk is the caller's choice:
//   Drop        the remainder is dropped (`prepare`: training only sees real audio);
//   Pad         the remainder becomes one more chunk, zero-padded at the end;
//   PadIfShort  the remainder is dropped, except that a track shorter than one chunk becomes one
//               zero-padded chunk (`predict`, `spectrogram`: every track gets a score).
// An empty track gives no chunk in every mode.
#pragma once

#include <cstdint>
#include <vector>

namespace gnet {

enum class Remainder { Drop, Pad, PadIfShort };

int64_t chunk_count(int64_t n_samples, int64_t chunk_samples, Remainder remainder);

// (chunk_count, chunk_samples) row-major: chunk i holds samples [i*chunk_samples,
// (i+1)*chunk_samples).
std::vector<float> make_chunks(const std::vector<float>& mono, int64_t chunk_samples,
                               Remainder remainder);

}  // namespace gnet
