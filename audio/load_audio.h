// A file on disk -> mono float samples at the spectrogram's rate (decode, downmix, resample).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

struct LoadedAudio {
    std::vector<float> samples;   // mono, at `sample_rate`
    int sample_rate = 0;          // the rate asked for (22050 by default)
    int source_rate = 0;          // the file's rate, Hz
    int source_channels = 0;      // the file's channel count
    double duration_seconds = 0;  // the file's length
};

// Errors (unreadable, empty, truncated, unsupported) name the file; see decode.h.
LoadedAudio load_audio(const std::string& path, int sample_rate = 22050);

}  // namespace gnet
