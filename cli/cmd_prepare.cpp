// gnet prepare AUDIO_DIR --out DATA_DIR: a folder of music -> a training set (train/prepare.h).
#include <iostream>

#include "cli/commands.h"
#include "cli/progress.h"
#include "kernels/error.h"
#include "train/interrupt.h"
#include "train/prepare.h"

namespace gnet::cli {

namespace {

struct PrepareArgs {
    PrepareOptions opt;
    std::string device = "auto";
    std::string layout = "shards";
    std::string shard_dtype = "float32";
    int64_t shard_mb = 256;
};

void run_prepare(PrepareArgs& a) {
    a.opt.device = resolve_device(parse_device_choice(a.device), &std::cerr);
    a.opt.layout = a.layout == "chunks" ? DataLayout::ChunkFiles : DataLayout::Shards;
    a.opt.shard_dtype = parse_shard_dtype(a.shard_dtype);
    a.opt.shard_bytes = a.shard_mb << 20;
    install_interrupt_handler();
    bool bar_started = false;
    std::unique_ptr<ProgressBar> progress;
    PrepareSummary s = prepare_dataset(
        a.opt,
        [&](const SkippedTrack& t) {
            if (progress && progress->active()) std::cerr << "\r\033[K";
            std::cerr << "gnet: skipped " << t.reason << "\n";
        },
        [&](const PrepareProgress& p) {
            if (!bar_started) {
                progress = std::make_unique<ProgressBar>("prepare", "tracks", p.total);
                bar_started = true;
            }
            progress->update(p.done);
        });
    if (progress) progress->finish();
    for (const std::string& w : s.warnings)
        std::cerr << "gnet: warning: " << w << "\n";
    if (!s.previous.empty()) std::cerr << "gnet: note: " << s.previous << "\n";
    for (size_t i = 0; i < s.capped.size() && i < 10; ++i)
        std::cerr << "gnet: note: " << s.capped[i].path << ": " << s.capped[i].chunks
                  << " chunks, kept " << s.capped[i].kept
                  << " spread over the track (--max-chunks-per-track)\n";
    print_prepare_report(s, std::cout);
    std::cout << "wrote " << a.opt.out_dir << "/{genres.txt, manifest.csv, prepare.json, "
              << (a.opt.layout == DataLayout::Shards ? "shards/" : "train/, val/") << "}\n";
}

}  // namespace

void register_prepare(CLI::App& app, Context&) {
    auto args = std::make_shared<PrepareArgs>();
    CLI::App* cmd = app.add_subcommand(
        "prepare", "Turn a folder of labelled music into a training set of spectrogram chunks");
    cmd->add_option("audio_dir", args->opt.audio_dir, "Folder of audio files")
        ->required()
        ->check(CLI::ExistingDirectory);
    cmd->add_option("--out,-o", args->opt.out_dir, "Folder to write the training set to")
        ->required();
    cmd->add_option("--labels", args->opt.labels_csv,
                    "Multi-hot CSV 'track,<genre>,...' (track relative to AUDIO_DIR); without it, "
                    "one sub-folder per genre")
        ->check(CLI::ExistingFile);
    cmd->add_option("--val-fraction", args->opt.val_fraction, "Share of tracks for validation")
        ->check(CLI::Range(0.0, 0.95))
        ->capture_default_str();
    cmd->add_option("--seed", args->opt.seed, "Seed of the train/validation split")
        ->capture_default_str();
    cmd->add_option("--jobs,-j", args->opt.jobs, "Decoding threads (0 = all cores)")
        ->check(non_negative_integer())
        ->capture_default_str();
    cmd->add_flag("--force", args->opt.force,
                  "Rebuild DATA_DIR if it already holds a data set (the old one is replaced only "
                  "when the new one is complete)");
    cmd->add_option("--max-chunks-per-track", args->opt.max_chunks_per_track,
                    "Keep at most this many 10 s chunks of a long track, spread evenly over it, "
                    "so one long file does not outweigh many songs (0 = keep all)")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    cmd->add_option("--layout", args->layout,
                    "shards: whole tracks packed into a few large .npy files with an index "
                    "(random windows, streaming); chunks: one .npy per 10 s chunk (as before)")
        ->check(CLI::IsMember({"shards", "chunks"}))
        ->capture_default_str();
    cmd->add_option("--shard-dtype", args->shard_dtype,
                    "Shards on disk: float32, or float16 (half the disk)")
        ->check(CLI::IsMember({"float32", "float16"}))
        ->capture_default_str();
    cmd->add_option("--shard-mb", args->shard_mb, "Largest shard file, in MiB")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20))
        ->capture_default_str();
    add_device_option(*cmd, args->device);
    cmd->footer(
        "Examples:\n"
        "  gnet prepare music/ --out data/                      # music/rock/a.mp3, "
        "music/jazz/b.flac ...\n"
        "  gnet prepare music/ --labels labels.csv --out data/  # multi-label table\n"
        "  gnet prepare music/ --out data/ --val-fraction 0.1 --seed 3 --force\n"
        "  gnet prepare music/ --out data/ --shard-dtype float16   # half the disk");
    cmd->callback([args] { run_prepare(*args); });
}

}  // namespace gnet::cli
