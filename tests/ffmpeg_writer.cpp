#include "tests/ffmpeg_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <stdexcept>

namespace gnet::test {

namespace {
void check(int rc, const char* what) {
    if (rc < 0)
        throw std::runtime_error(std::string("ffmpeg_writer: ") + what + " failed (" +
                                 std::to_string(rc) + ")");
}
}  // namespace

void write_with_ffmpeg(const std::string& path, const std::string& format,
                       const std::string& codec_name, const std::vector<float>& interleaved,
                       int channels, int rate) {
    const AVCodec* codec = avcodec_find_encoder_by_name(codec_name.c_str());
    if (!codec) throw std::runtime_error("ffmpeg_writer: no encoder " + codec_name);
    AVFormatContext* fmt = nullptr;
    check(avformat_alloc_output_context2(&fmt, nullptr, format.c_str(), path.c_str()), "format");
    AVStream* st = avformat_new_stream(fmt, nullptr);
    AVCodecContext* ctx = avcodec_alloc_context3(codec);
    av_channel_layout_default(&ctx->ch_layout, channels);
    ctx->sample_rate = rate;
    ctx->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    ctx->bit_rate = 128000;
    ctx->time_base = AVRational{1, rate};
    if (fmt->oformat->flags & AVFMT_GLOBALHEADER) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    check(avcodec_open2(ctx, codec, nullptr), "avcodec_open2");
    check(avcodec_parameters_from_context(st->codecpar, ctx), "parameters");
    st->time_base = ctx->time_base;
    check(avio_open(&fmt->pb, path.c_str(), AVIO_FLAG_WRITE), "avio_open");
    check(avformat_write_header(fmt, nullptr), "write_header");

    SwrContext* swr = nullptr;
    check(swr_alloc_set_opts2(&swr, &ctx->ch_layout, ctx->sample_fmt, rate, &ctx->ch_layout,
                              AV_SAMPLE_FMT_FLT, rate, 0, nullptr),
          "swr");
    check(swr_init(swr), "swr_init");
    const int frame_size = ctx->frame_size > 0 ? ctx->frame_size : 1024;
    AVFrame* frame = av_frame_alloc();
    AVPacket* pkt = av_packet_alloc();
    auto drain = [&](bool flush) {
        check(avcodec_send_frame(ctx, flush ? nullptr : frame), "send_frame");
        while (avcodec_receive_packet(ctx, pkt) == 0) {
            av_packet_rescale_ts(pkt, ctx->time_base, st->time_base);
            pkt->stream_index = st->index;
            check(av_interleaved_write_frame(fmt, pkt), "write_frame");
        }
    };
    const int64_t total = int64_t(interleaved.size()) / channels;
    for (int64_t pos = 0; pos < total; pos += frame_size) {
        const int n = int(std::min<int64_t>(frame_size, total - pos));
        av_frame_unref(frame);
        frame->nb_samples = ctx->frame_size > 0 ? frame_size : n;
        frame->format = ctx->sample_fmt;
        frame->sample_rate = rate;
        av_channel_layout_copy(&frame->ch_layout, &ctx->ch_layout);
        check(av_frame_get_buffer(frame, 0), "frame buffer");
        av_samples_set_silence(frame->extended_data, 0, frame->nb_samples, channels,
                               ctx->sample_fmt);
        const uint8_t* src = reinterpret_cast<const uint8_t*>(interleaved.data() + pos * channels);
        check(swr_convert(swr, frame->extended_data, n, &src, n), "swr_convert");
        frame->pts = pos;
        drain(false);
    }
    drain(true);
    check(av_write_trailer(fmt), "trailer");
    av_packet_free(&pkt);
    av_frame_free(&frame);
    swr_free(&swr);
    avcodec_free_context(&ctx);
    avio_closep(&fmt->pb);
    avformat_free_context(fmt);
}

}  // namespace gnet::test
