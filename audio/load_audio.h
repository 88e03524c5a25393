// A file on disk -> mono float samples at the spectrogram's rate (decode, downmix, resample).
//
// AudioStream does it block by block, so a two-hour file never sits in memory whole (predict);
// load_audio() reads everything at once (prepare, spectrogram).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "audio/decode.h"
#include "audio/resample.h"

namespace gnet {

struct LoadedAudio {
    std::vector<float> samples;   // mono, at `sample_rate`
    int sample_rate = 0;          // the rate asked for (22050 by default)
    int source_rate = 0;          // the file's rate, Hz
    int source_channels = 0;      // the file's channel count
    double duration_seconds = 0;  // the file's length
};

class AudioStream {
  public:
    AudioStream(const std::string& path, int sample_rate);
    // Appends at least `min_samples` resampled samples to `out` unless the file ends first;
    // returns false once everything has been delivered.
    bool read(std::vector<float>& out, size_t min_samples);
    int source_rate() const { return decoder_.info().sample_rate; }
    int source_channels() const { return decoder_.info().channels; }
    // Seconds of the file decoded so far (its length once read() returned false).
    double seconds_decoded() const;

  private:
    AudioDecoder decoder_;
    Resampler resampler_;
    std::vector<float> block_;
    bool done_ = false;
};

// Errors (unreadable, empty, truncated, unsupported, out-of-range) name the file; see decode.h.
LoadedAudio load_audio(const std::string& path, int sample_rate = 22050);

}  // namespace gnet
