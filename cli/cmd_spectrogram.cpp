// gnet spectrogram FILE -o out.npy [--png out.png]: the network's view of one audio file, as
// float32 [n_chunks, 128, 431] in a .npy and, if asked, as a picture.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "audio/chunk.h"
#include "audio/load_audio.h"
#include "audio/npy.h"
#include "audio/png.h"
#include "audio/spectrogram.h"
#include "cli/commands.h"
#include "kernels/error.h"
#include "nn/device.h"

namespace gnet::cli {

namespace {

struct SpectrogramArgs {
    std::string input;
    std::string npy;
    std::string png;
    std::string device = "auto";
    std::string remainder = "pad-if-short";
};

Remainder parse_remainder(const std::string& s) {
    if (s == "drop") return Remainder::Drop;
    if (s == "pad") return Remainder::Pad;
    return Remainder::PadIfShort;
}

void run_spectrogram(const SpectrogramArgs& args) {
    const Device device = resolve_device(parse_device_choice(args.device), &std::cerr);
    const SpectrogramConfig cfg;
    LoadedAudio audio = load_audio(args.input, cfg.sample_rate);
    const int64_t n_samples = int64_t(audio.samples.size());
    const int64_t n_chunks =
        chunk_count(n_samples, cfg.chunk_samples(), parse_remainder(args.remainder));
    if (n_chunks == 0)
        throw Error("'" + args.input + "' lasts " + std::to_string(audio.duration_seconds) +
                    " s, shorter than one " + std::to_string(cfg.chunk_seconds) +
                    " s chunk (--remainder pad or pad-if-short zero-pads it)");
    if (n_samples < cfg.chunk_samples()) {
        std::fprintf(stderr, "gnet: note: '%s' lasts %.1f s, zero-padded to one %d s chunk\n",
                     args.input.c_str(), audio.duration_seconds, cfg.chunk_seconds);
    }
    const std::vector<float> chunks =
        make_chunks(audio.samples, cfg.chunk_samples(), parse_remainder(args.remainder));
    audio.samples = {};
    const std::vector<float> spec = spectrogram_chunks(chunks, n_chunks, device, cfg);
    npy_write(args.npy, spec.data(), {n_chunks, cfg.n_mels, cfg.frames()});
    if (!args.png.empty()) {
        SpectrogramPngOptions po;
        po.title = std::filesystem::path(args.input).filename().string();
        po.sample_rate = cfg.sample_rate;
        po.hop = cfg.hop;
        po.fmax = cfg.fmax;
        po.chunk_seconds = cfg.chunk_seconds;
        write_spectrogram_png(args.png, spec.data(), n_chunks, cfg.n_mels, cfg.frames(), po);
    }
    std::printf("%s: %d Hz, %d channel%s, %.1f s -> %lld chunk%s [%lld, %d, %d] on %s -> %s%s%s\n",
                args.input.c_str(), audio.source_rate, audio.source_channels,
                audio.source_channels == 1 ? "" : "s", audio.duration_seconds, (long long)n_chunks,
                n_chunks == 1 ? "" : "s", (long long)n_chunks, cfg.n_mels, cfg.frames(),
                device_name(device), args.npy.c_str(), args.png.empty() ? "" : ", ",
                args.png.c_str());
    std::fflush(stdout);
}

}  // namespace

void register_spectrogram(CLI::App& app, Context&) {
    auto args = std::make_shared<SpectrogramArgs>();
    CLI::App* cmd = app.add_subcommand(
        "spectrogram",
        "Turn an audio file into the log-mel images the model sees: float32 [chunks, 128, 431]");
    cmd->add_option("FILE", args->input, "Audio file (WAV, FLAC, OGG/Vorbis/Opus, MP3, AU, AIFF)")
        ->required();
    cmd->add_option("-o,--output", args->npy,
                    "Where to write the .npy (float32 [n_chunks, 128, 431])")
        ->required();
    cmd->add_option("--png", args->png,
                    "Also draw a picture: time and frequency axes, rows of up to 40 s (long files "
                    "compressed to at most 12 rows), viridis colours, low notes at the bottom");
    cmd->add_option(
           "--remainder", args->remainder,
           "What to do with the last partial 10 s chunk: pad-if-short (drop it unless the whole "
           "track is shorter than one chunk), drop, or pad (zero-pad it)")
        ->check(CLI::IsMember({"pad-if-short", "drop", "pad"}))
        ->capture_default_str();
    add_device_option(*cmd, args->device);
    cmd->footer(
        "Examples:\n"
        "  gnet spectrogram song.mp3 -o song.npy\n"
        "  gnet spectrogram song.flac -o song.npy --png song.png --device cpu\n"
        "  python3 -c \"import numpy; print(numpy.load('song.npy').shape)\"   # (n_chunks, 128, "
        "431)");
    cmd->callback([args] { run_spectrogram(*args); });
}

}  // namespace gnet::cli
