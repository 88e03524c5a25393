#include "audio/load_audio.h"

#include "audio/decode.h"
#include "audio/resample.h"

namespace gnet {

LoadedAudio load_audio(const std::string& path, int sample_rate) {
    DecodedAudio decoded = decode_audio(path);
    LoadedAudio out;
    out.sample_rate = sample_rate;
    out.source_rate = decoded.sample_rate;
    out.source_channels = decoded.channels;
    out.duration_seconds = decoded.duration_seconds();
    out.samples = resample(decoded.mono, decoded.sample_rate, sample_rate);
    return out;
}

}  // namespace gnet
