// The FFmpeg backend of audio/decode.h: libavformat demuxes, libavcodec decodes, libswresample
// turns whatever sample format the decoder gives (planar, int16, int32, double) into interleaved
// float. Only local files are opened (protocol whitelist "file", a "file:" URL so that a name
// like "http:x.mp3" stays a file name) and only audio container formats are allowed, so a
// playlist or concat script named .m4a cannot make FFmpeg open other files or URLs.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "audio/decode.h"
#include "kernels/error.h"

namespace gnet {

namespace {

// Demuxers gnet lets FFmpeg pick (av_match_list names; "mov" covers mp4, m4a, 3gp).
constexpr const char* kFormatWhitelist =
    "mov,mp4,m4a,3gp,3g2,mj2,mp3,asf,matroska,webm,aac,ogg,flac,wav,w64,aiff,au,caf,ape,wv,tta,"
    "ac3,eac3,dts,truehd,mlp,amr,amrnb,amrwb,mpc,mpc8,tak,shn,dsf,xwma,voc,loas,latm,avi,flv,rm,"
    "mpeg,mpegts,mp2,mpga,opus,spdif,sox,wsaud,musx,mxf";

// FFmpeg's log goes nowhere: its last warning or error per thread is kept to explain a failure.
thread_local std::string t_last_log;

void capture_log(void* avcl, int level, const char* fmt, va_list vl) {
    if (level > AV_LOG_WARNING) return;
    char line[512];
    int print_prefix = 0;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    std::string s = line;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    if (!s.empty()) t_last_log = s;
}

void silence_ffmpeg() {
    static std::once_flag once;
    std::call_once(once, [] {
        av_log_set_level(AV_LOG_WARNING);
        av_log_set_callback(capture_log);
    });
}

std::string av_error_text(int err) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(err, buf, sizeof buf);
    return buf;
}

struct FormatCloser {
    void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecCloser {
    void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFree {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
    void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwrFree {
    void operator()(SwrContext* s) const { swr_free(&s); }
};

class FfmpegSource : public AudioSource {
  public:
    explicit FfmpegSource(const std::string& path) : path_(path) {
        silence_ffmpeg();
        t_last_log.clear();
        AVDictionary* opts = nullptr;
        av_dict_set(&opts, "protocol_whitelist", "file", 0);
        av_dict_set(&opts, "format_whitelist", kFormatWhitelist, 0);
        AVFormatContext* raw = nullptr;
        const std::string url = "file:" + path;
        int rc = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
        av_dict_free(&opts);
        if (rc < 0) fail("FFmpeg cannot open it", rc);
        fmt_.reset(raw);
        rc = avformat_find_stream_info(fmt_.get(), nullptr);
        if (rc < 0) fail("FFmpeg cannot read its streams", rc);
        const AVCodec* codec = nullptr;
        stream_ = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
        if (stream_ < 0)
            fail(stream_ == AVERROR_DECODER_NOT_FOUND ? "no decoder for its audio stream"
                                                      : "no audio stream in it",
                 0);
        AVStream* st = fmt_->streams[stream_];
        ctx_.reset(avcodec_alloc_context3(codec));
        if (!ctx_) fail("out of memory", 0);
        rc = avcodec_parameters_to_context(ctx_.get(), st->codecpar);
        if (rc < 0) fail("bad codec parameters", rc);
        ctx_->pkt_timebase = st->time_base;
        rc = avcodec_open2(ctx_.get(), codec, nullptr);
        if (rc < 0) fail(std::string("cannot open the ") + codec->name + " decoder", rc);
        info_.sample_rate = ctx_->sample_rate;
        info_.channels = ctx_->ch_layout.nb_channels;
        info_.format = std::string("FFmpeg: ") + fmt_->iformat->name + " / " + codec->name;
        // A length stated by the container or stream header (MP4's moov, MP3's Xing/Info frame);
        // a length estimated from the bitrate says nothing about truncation.
        if (fmt_->duration_estimation_method == AVFMT_DURATION_FROM_STREAM &&
            st->duration != AV_NOPTS_VALUE && st->duration > 0 && info_.sample_rate > 0)
            info_.declared_frames =
                av_rescale_q(st->duration, st->time_base, AVRational{1, info_.sample_rate});
        // MP3 without a Xing/Info frame: the ID3v2 tag's TLEN (length in ms) when it has one.
        if (info_.declared_frames < 0)
            if (const AVDictionaryEntry* tlen = av_dict_get(fmt_->metadata, "TLEN", nullptr, 0)) {
                char* end = nullptr;
                const double ms = std::strtod(tlen->value, &end);
                if (end != tlen->value && ms > 0 && ms < 1e9)
                    info_.declared_frames = int64_t(ms * 1e-3 * info_.sample_rate);
            }
        pkt_.reset(av_packet_alloc());
        frame_.reset(av_frame_alloc());
        if (!pkt_ || !frame_) fail("out of memory", 0);
    }

    const AudioInfo& info() const override { return info_; }

    size_t read_interleaved(float* out, size_t max_frames) override {
        size_t done = 0;
        while (done < max_frames) {
            if (pending_pos_ < pending_.size() / size_t(info_.channels)) {
                const size_t n = std::min(max_frames - done,
                                          pending_.size() / size_t(info_.channels) - pending_pos_);
                std::memcpy(out + done * size_t(info_.channels),
                            pending_.data() + pending_pos_ * size_t(info_.channels),
                            n * size_t(info_.channels) * sizeof(float));
                pending_pos_ += n;
                done += n;
                continue;
            }
            if (!next_frame()) break;
        }
        return done;
    }

  private:
    [[noreturn]] void fail(const std::string& what, int err) const {
        std::string why = what;
        if (err < 0) why += ": " + av_error_text(err);
        if (!t_last_log.empty() && why.find(t_last_log) == std::string::npos)
            why += " (" + t_last_log + ")";
        throw Error("cannot decode audio file '" + path_ + "': " + why);
    }

    // Decodes the next frame into pending_; false at the end of the stream.
    bool next_frame() {
        for (;;) {
            int rc = avcodec_receive_frame(ctx_.get(), frame_.get());
            if (rc == 0) {
                convert_frame();
                av_frame_unref(frame_.get());
                return true;
            }
            if (rc == AVERROR_EOF) return false;
            if (rc != AVERROR(EAGAIN)) {
                // A corrupt frame: skip it as FFmpeg's own tools do, unless nothing ever decodes.
                if (++bad_frames_ > 1000) fail("too many undecodable frames", rc);
                continue;
            }
            if (flushed_) return false;
            rc = av_read_frame(fmt_.get(), pkt_.get());
            if (rc == AVERROR_EOF) {
                avcodec_send_packet(ctx_.get(), nullptr);  // drain the decoder
                flushed_ = true;
                continue;
            }
            if (rc < 0) fail("read error", rc);
            if (pkt_->stream_index == stream_) {
                rc = avcodec_send_packet(ctx_.get(), pkt_.get());
                if (rc < 0 && rc != AVERROR(EAGAIN) && ++bad_frames_ > 1000)
                    fail("too many undecodable packets", rc);
            }
            av_packet_unref(pkt_.get());
        }
    }

    void convert_frame() {
        const AVFrame* f = frame_.get();
        if (f->ch_layout.nb_channels != info_.channels || f->sample_rate != info_.sample_rate)
            fail("the channel count or sample rate changes inside the stream", 0);
        if (!swr_ || f->format != swr_format_) {
            AVChannelLayout layout;
            av_channel_layout_default(&layout, info_.channels);
            SwrContext* s = nullptr;
            int rc = swr_alloc_set_opts2(&s, &layout, AV_SAMPLE_FMT_FLT, info_.sample_rate, &layout,
                                         AVSampleFormat(f->format), info_.sample_rate, 0, nullptr);
            av_channel_layout_uninit(&layout);
            if (rc < 0 || !s || swr_init(s) < 0) {
                swr_free(&s);
                fail("cannot convert its sample format", rc);
            }
            swr_.reset(s);
            swr_format_ = f->format;
        }
        pending_.resize(size_t(f->nb_samples) * size_t(info_.channels));
        uint8_t* dst = reinterpret_cast<uint8_t*>(pending_.data());
        int got = swr_convert(swr_.get(), &dst, f->nb_samples,
                              const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
        if (got < 0) fail("sample conversion failed", got);
        pending_.resize(size_t(got) * size_t(info_.channels));
        pending_pos_ = 0;
    }

    std::string path_;
    std::unique_ptr<AVFormatContext, FormatCloser> fmt_;
    std::unique_ptr<AVCodecContext, CodecCloser> ctx_;
    std::unique_ptr<AVPacket, PacketFree> pkt_;
    std::unique_ptr<AVFrame, FrameFree> frame_;
    std::unique_ptr<SwrContext, SwrFree> swr_;
    int swr_format_ = -1;
    int stream_ = -1;
    bool flushed_ = false;
    int bad_frames_ = 0;
    std::vector<float> pending_;
    size_t pending_pos_ = 0;
    AudioInfo info_;
};

}  // namespace

std::unique_ptr<AudioSource> open_ffmpeg(const std::string& path) {
    return std::make_unique<FfmpegSource>(path);
}

}  // namespace gnet
