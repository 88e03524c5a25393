#include "audio/load_audio.h"

namespace gnet {

namespace {
constexpr size_t kDecodeBlock = size_t(1) << 16;  // source frames per decoder call
}

AudioStream::AudioStream(const std::string& path, int sample_rate)
    : decoder_(path), resampler_(decoder_.info().sample_rate, sample_rate) {}

bool AudioStream::read(std::vector<float>& out, size_t min_samples) {
    if (done_) return false;
    const size_t start = out.size();
    while (out.size() - start < min_samples) {
        block_.clear();
        if (decoder_.read(block_, kDecodeBlock) == 0) {
            resampler_.finish(out);
            done_ = true;
            break;
        }
        resampler_.process(block_.data(), block_.size(), out);
    }
    return out.size() > start || !done_;
}

double AudioStream::seconds_decoded() const {
    return double(decoder_.frames_read()) / decoder_.info().sample_rate;
}

LoadedAudio load_audio(const std::string& path, int sample_rate) {
    AudioStream stream(path, sample_rate);
    LoadedAudio out;
    out.sample_rate = sample_rate;
    out.source_rate = stream.source_rate();
    out.source_channels = stream.source_channels();
    while (stream.read(out.samples, size_t(1) << 22)) {
    }
    out.duration_seconds = stream.seconds_decoded();
    return out;
}

}  // namespace gnet
