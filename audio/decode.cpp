#include "audio/decode.h"

#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "kernels/error.h"

namespace gnet {

namespace {

constexpr sf_count_t kBlockFrames = 1 << 16;  // frames read per sf_readf_float call

struct SndfileCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
    throw Error("cannot decode audio file '" + path + "': " + reason);
}

// The major format's name as libsndfile spells it ("WAV (Microsoft)", "FLAC (Free Lossless ...)").
std::string format_name(int format) {
    SF_FORMAT_INFO fi{};
    fi.format = format & SF_FORMAT_TYPEMASK;
    if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) return fi.name;
    return "format 0x" + std::to_string(format);
}

}  // namespace

DecodedAudio decode_audio(const std::string& path) {
    SF_INFO info{};
    SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
    if (!file) {
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec) &&
            std::filesystem::file_size(path, ec) == 0 && !ec)
            fail(path, "the file is empty (0 bytes)");
        fail(path, sf_strerror(nullptr));
    }
    if (info.channels <= 0 || info.samplerate <= 0)
        fail(path, "libsndfile reports " + std::to_string(info.channels) + " channels at " +
                       std::to_string(info.samplerate) + " Hz");

    DecodedAudio out;
    out.sample_rate = info.samplerate;
    out.channels = info.channels;
    const int ch = info.channels;
    const float inv_ch = 1.0f / float(ch);
    std::vector<float> block(size_t(kBlockFrames) * size_t(ch));
    for (;;) {
        const sf_count_t got = sf_readf_float(file.get(), block.data(), kBlockFrames);
        if (got <= 0) break;
        const size_t base = out.mono.size();
        out.mono.resize(base + size_t(got));
        for (sf_count_t i = 0; i < got; ++i) {
            const float* frame = block.data() + size_t(i) * size_t(ch);
            float sum = 0.f;
            for (int c = 0; c < ch; ++c)
                sum += frame[c];
            out.mono[base + size_t(i)] = ch == 1 ? sum : sum * inv_ch;
            if (!std::isfinite(sum))  // only float/double files can hold these
                fail(path, "sample " + std::to_string(base + size_t(i)) +
                               " is not a finite number (NaN or Inf)");
        }
    }
    if (sf_error(file.get()) != SF_ERR_NO_ERROR) fail(path, sf_strerror(file.get()));
    if (out.mono.empty())
        fail(path, "no audio samples (" + format_name(info.format) + ", empty or truncated)");
    // The header's frame count is exact for FLAC and OGG; MP3 lengths are estimates. (A PCM
    // container cut short is trimmed to what is there by libsndfile itself and decodes as the
    // shorter file.)
    const bool exact_length = (info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG;
    if (exact_length && info.frames != SF_COUNT_MAX && out.frames() < info.frames)
        fail(path, "truncated: the header promises " + std::to_string(info.frames) +
                       " frames but only " + std::to_string(out.frames()) + " could be decoded");
    return out;
}

}  // namespace gnet
