#include "audio/decode.h"

#include <sndfile.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "kernels/error.h"

namespace gnet {

namespace {

constexpr size_t kBlockFrames = size_t(1) << 15;

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
    throw Error("cannot decode audio file '" + path + "': " + reason);
}

std::string lower_extension(const std::string& path) {
    size_t dot = path.find_last_of('.');
    size_t slash = path.find_last_of('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot + 1);
    for (char& c : ext)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

std::string first_bytes(const std::string& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    in.read(s.data(), std::streamsize(n));
    s.resize(size_t(in.gcount()));
    return s;
}

// Printable ASCII and UTF-8 text (no NUL, few control characters): not audio whatever its name.
bool looks_like_text(const std::string& head) {
    if (head.empty()) return false;
    for (unsigned char c : head)
        if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t')) return false;
    return true;
}

// MP3 by name or by content (an ID3v2 tag, or an MPEG audio frame sync at the start).
bool is_mpeg_audio(const std::string& path, const std::string& head) {
    const std::string ext = lower_extension(path);
    if (ext == "mp3" || ext == "mp2" || ext == "mpga") return true;
    if (head.rfind("ID3", 0) == 0) return true;
    return head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0xFF &&
           (static_cast<unsigned char>(head[1]) & 0xE0) == 0xE0 && ext != "aac";
}

}  // namespace

AudioDecoder::AudioDecoder(const std::string& path) : path_(path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(path, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        fail(path, S_ISDIR(st.st_mode) ? "is a folder, not an audio file"
                                       : "not a regular file (a FIFO, socket or device); gnet "
                                         "reads audio files only");
    if (st.st_size == 0) fail(path, "the file is empty (0 bytes)");
    const std::string head = first_bytes(path, 512);
    std::string sndfile_reason;
    if (!is_mpeg_audio(path, head)) {
        int code = 0;
        try {
            source_ = open_sndfile(path, &code);
        } catch (const Error& e) {
            if (code != SF_ERR_UNRECOGNISED_FORMAT) throw;
            sndfile_reason = sf_error_number(code);
        }
    }
    if (!source_) {
        try {
            source_ = open_ffmpeg(path);
        } catch (const Error& e) {
            if (looks_like_text(head)) fail(path, "the file holds text, not audio");
            std::string why = e.what();
            const std::string prefix = "cannot decode audio file '" + path + "': ";
            if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
            if (!sndfile_reason.empty())
                why = "not a format libsndfile reads (" + sndfile_reason + ") and FFmpeg: " + why;
            fail(path, why);
        }
    }
    const AudioInfo& in = source_->info();
    if (in.channels <= 0 || in.channels > 64)
        fail(path, std::to_string(in.channels) + " channels (" + in.format + ")");
    if (in.sample_rate < kMinSampleRate || in.sample_rate > kMaxSampleRate)
        fail(path, "sample rate " + std::to_string(in.sample_rate) + " Hz is outside the " +
                       std::to_string(kMinSampleRate) + " Hz - " +
                       std::to_string(kMaxSampleRate / 1000) + " kHz gnet accepts");
    max_frames_ = int64_t(kMaxDecodedSeconds * in.sample_rate);
    if (in.declared_frames > max_frames_)
        fail(path, "the header declares " + std::to_string(in.declared_frames / in.sample_rate) +
                       " s of audio, more than the " + std::to_string(int(kMaxDecodedSeconds)) +
                       " s gnet decodes");
    block_.resize(kBlockFrames * size_t(in.channels));
}

AudioDecoder::~AudioDecoder() = default;

size_t AudioDecoder::read(std::vector<float>& out, size_t max_frames) {
    if (ended_ || max_frames == 0) return 0;
    const AudioInfo& in = source_->info();
    const int ch = in.channels;
    const float inv_ch = 1.0f / float(ch);
    size_t total = 0;
    while (total < max_frames) {
        const size_t want = std::min(kBlockFrames, max_frames - total);
        const size_t got = source_->read_interleaved(block_.data(), want);
        if (got == 0) break;
        const size_t base = out.size();
        out.resize(base + got);
        for (size_t i = 0; i < got; ++i) {
            const float* frame = block_.data() + i * size_t(ch);
            float sum = 0.f;
            for (int c = 0; c < ch; ++c) {
                const float v = frame[c];
                if (!(std::fabs(v) <= kMaxSampleMagnitude)) {
                    out.resize(base);
                    if (!std::isfinite(v))
                        fail(path_, "sample " + std::to_string(frames_read_ + int64_t(i)) +
                                        " is not a finite number (NaN or Inf)");
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%g", double(v));
                    fail(path_, "sample " + std::to_string(frames_read_ + int64_t(i)) + " is " +
                                    buf + ", far outside [-1, 1] (a corrupt float file)");
                }
                sum += v;
            }
            out[base + i] = ch == 1 ? sum : sum * inv_ch;
        }
        frames_read_ += int64_t(got);
        total += got;
        if (frames_read_ > max_frames_)
            fail(path_, "longer than the " + std::to_string(int(kMaxDecodedSeconds / 3600)) +
                            " hours gnet decodes");
    }
    if (total > 0) return total;
    ended_ = true;
    if (frames_read_ == 0) fail(path_, "no audio samples (" + in.format + ", empty or truncated)");
    // 2% slack (and at least 0.1 s): MP3 and AAC lengths carry encoder delay and padding.
    const int64_t slack = std::max<int64_t>(in.sample_rate / 10, in.declared_frames / 50);
    if (in.declared_frames > 0 && frames_read_ + slack < in.declared_frames)
        fail(path_, "truncated: the header promises " + std::to_string(in.declared_frames) +
                        " frames but only " + std::to_string(frames_read_) + " could be decoded");
    return 0;
}

DecodedAudio decode_audio(const std::string& path) {
    AudioDecoder dec(path);
    DecodedAudio out;
    out.sample_rate = dec.info().sample_rate;
    out.channels = dec.info().channels;
    while (dec.read(out.mono, size_t(1) << 20) > 0) {
    }
    return out;
}

}  // namespace gnet
