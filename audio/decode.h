// Decoding audio files to mono float samples, block by block.
//
// Two backends, chosen per file:
//   libsndfile  WAV, FLAC, OGG (Vorbis, Opus), AIFF, AU, W64, CAF, ... (what it recognises)
//   FFmpeg      (libavformat + libavcodec + libswresample) MP3, and everything libsndfile does
//               not open: M4A/AAC, MP4/MOV, ALAC, WMA, ... MP3 goes to FFmpeg first because
//               libsndfile's MP3 path (mpg123) prints decoder noise on the console that names no
//               file, and cannot tell a truncated file from a short one.
// Neither backend may print anything: FFmpeg's log is captured and its last message becomes part of
// the error when a file fails.
//
// Refused before anything is read: a path that is not a regular file (a FIFO would block open()
// forever), an empty file. Refused after the header: a sample rate outside [1 kHz, 768 kHz], a
// declared length above kMaxDecodedSeconds. While reading: a NaN or infinite sample, a sample far
// outside [-1, 1] (|x| > kMaxSampleMagnitude: float files with garbage such as 1e30), audio past
// kMaxDecodedSeconds, a file that decodes to fewer frames than its header promises (FLAC, OGG,
// MP3 with a Xing/Info header, MP4 and other containers whose header states the length). Every
// error is a gnet::Error naming the file with the real reason.
//
// Channels are downmixed to mono as their mean.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gnet {

constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 768000;
constexpr double kMaxDecodedSeconds = 6 * 3600.0;  // six hours
constexpr float kMaxSampleMagnitude = 32.f;        // +30 dBFS: far beyond any honest float mix

struct AudioInfo {
    int sample_rate = 0;
    int channels = 0;
    int64_t declared_frames = -1;  // from the header; -1 when unknown or only estimated
    std::string format;            // "libsndfile: FLAC (Free Lossless Audio Codec)", "FFmpeg: aac"
};

// Backend interface (decode_sndfile.cpp, decode_ffmpeg.cpp).
class AudioSource {
  public:
    virtual ~AudioSource() = default;
    virtual const AudioInfo& info() const = 0;
    // Up to max_frames interleaved frames into `out` (channels floats each); 0 at the end.
    virtual size_t read_interleaved(float* out, size_t max_frames) = 0;
};

class AudioDecoder {
  public:
    explicit AudioDecoder(const std::string& path);
    ~AudioDecoder();
    AudioDecoder(const AudioDecoder&) = delete;
    AudioDecoder& operator=(const AudioDecoder&) = delete;

    const AudioInfo& info() const { return source_->info(); }
    const std::string& path() const { return path_; }
    // Appends up to max_frames mono samples to `out`; returns how many, 0 at the end of the file
    // (after the end-of-file checks: nothing decoded, truncation).
    size_t read(std::vector<float>& out, size_t max_frames);
    int64_t frames_read() const { return frames_read_; }

  private:
    std::string path_;
    std::unique_ptr<AudioSource> source_;
    std::vector<float> block_;
    int64_t frames_read_ = 0;
    int64_t max_frames_ = 0;
    bool ended_ = false;
};

struct DecodedAudio {
    std::vector<float> mono;  // mean of the channels, in [-1, 1] for integer formats
    int sample_rate = 0;      // Hz, as stored in the file
    int channels = 0;         // as stored in the file
    int64_t frames() const { return int64_t(mono.size()); }
    double duration_seconds() const {
        return sample_rate > 0 ? double(mono.size()) / sample_rate : 0;
    }
};

// The whole file at once.
DecodedAudio decode_audio(const std::string& path);

// Backends; throw gnet::Error (naming the file) when they cannot open it.
std::unique_ptr<AudioSource> open_sndfile(const std::string& path, int* sf_error_code);
std::unique_ptr<AudioSource> open_ffmpeg(const std::string& path);

}  // namespace gnet
