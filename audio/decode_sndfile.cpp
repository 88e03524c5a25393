// The libsndfile backend of audio/decode.h.
#include <sndfile.h>

#include <memory>

#include "audio/decode.h"
#include "kernels/error.h"

namespace gnet {

namespace {

struct SndfileCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};

// The major format's name as libsndfile spells it ("WAV (Microsoft)", "FLAC (Free Lossless ...)").
std::string format_name(int format) {
    SF_FORMAT_INFO fi{};
    fi.format = format & SF_FORMAT_TYPEMASK;
    if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) return fi.name;
    return "format 0x" + std::to_string(format);
}

class SndfileSource : public AudioSource {
  public:
    SndfileSource(std::string path, SNDFILE* f, const SF_INFO& sf) : path_(std::move(path)), f_(f) {
        info_.sample_rate = sf.samplerate;
        info_.channels = sf.channels;
        info_.format = "libsndfile: " + format_name(sf.format);
        // A PCM container cut short is trimmed by libsndfile to what is there, so its header
        // count is what it delivers; FLAC and OGG state the true length and are checked.
        const int major = sf.format & SF_FORMAT_TYPEMASK;
        if ((major == SF_FORMAT_FLAC || major == SF_FORMAT_OGG) && sf.frames != SF_COUNT_MAX)
            info_.declared_frames = sf.frames;
    }
    const AudioInfo& info() const override { return info_; }
    size_t read_interleaved(float* out, size_t max_frames) override {
        const sf_count_t got = sf_readf_float(f_.get(), out, sf_count_t(max_frames));
        if (got > 0) return size_t(got);
        if (sf_error(f_.get()) != SF_ERR_NO_ERROR)
            throw Error("cannot decode audio file '" + path_ + "': " + sf_strerror(f_.get()));
        return 0;
    }

  private:
    std::string path_;
    std::unique_ptr<SNDFILE, SndfileCloser> f_;
    AudioInfo info_;
};

}  // namespace

std::unique_ptr<AudioSource> open_sndfile(const std::string& path, int* sf_error_code) {
    SF_INFO sf{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &sf);
    if (!f) {
        *sf_error_code = sf_error(nullptr);
        throw Error("cannot decode audio file '" + path + "': " + sf_strerror(nullptr));
    }
    *sf_error_code = 0;
    return std::make_unique<SndfileSource>(path, f, sf);
}

}  // namespace gnet
