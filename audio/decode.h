// Decoding audio files with libsndfile: WAV, FLAC, OGG (Vorbis, Opus), MP3, AU, AIFF and whatever
// else the installed libsndfile reads, at any sample rate and channel count.
//
// The file is read in fixed-size blocks until libsndfile reports the end (the frame count in the
// header is not trusted for the buffer size) and downmixed to mono as the mean of the channels.
// An unreadable, empty, truncated or unsupported file, or a float file holding NaN or Inf, is a
// gnet::Error whose message names the file and gives the reason (libsndfile's where it has one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

struct DecodedAudio {
    std::vector<float> mono;  // mean of the channels, in [-1, 1] for integer formats
    int sample_rate = 0;      // Hz, as stored in the file
    int channels = 0;         // as stored in the file
    int64_t frames() const { return int64_t(mono.size()); }
    double duration_seconds() const {
        return sample_rate > 0 ? double(mono.size()) / sample_rate : 0;
    }
};

DecodedAudio decode_audio(const std::string& path);

}  // namespace gnet
