// gnet predict FILE_OR_DIR... --model M: the most likely genres of each track.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/predict_output.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "train/predict.h"

namespace gnet::cli {

namespace {

struct PredictArgs {
    std::vector<std::string> inputs;
    std::string model = "model.safetensors";
    std::string strategy = "mean";
    std::string format = "table";
    std::string genres_file;
    int top_k = 3;
    float threshold = -1;
    double hop = 0;
    bool segments = false;
    int batch = 32;
    int jobs = 0;
    std::string device = "auto";
};

int run_predict(const PredictArgs& a, bool model_given) {
    PredictOptions opt;
    opt.strategy = parse_aggregation(a.strategy);
    opt.batch = a.batch;
    opt.jobs = a.jobs;
    opt.threshold = a.threshold;
    opt.hop_s = a.hop;
    const OutputFormat format = parse_output_format(a.format);
    if (!model_given && !std::filesystem::exists(a.model))
        throw UsageError(
            "no model: pass --model with a checkpoint from 'gnet train' "
            "(RUN_DIR/best.safetensors), "
            "or a torchvision ResNet18 state_dict saved as .safetensors (with --genres); there is "
            "no " +
            a.model + " here (see 'gnet predict --help')");
    std::vector<std::string> missing;
    std::vector<std::string> files = expand_inputs(a.inputs, &missing);
    if (files.empty() && missing.empty()) throw Error("no audio files found in the given folders");

    Checkpoint ckpt = read_checkpoint(
        a.model, a.genres_file.empty() ? std::nullopt : std::optional<std::string>(a.genres_file));
    const Device device = resolve_device(parse_device_choice(a.device), &std::cerr);
    Tagger tagger(ckpt, device, opt);

    PredictPrinter printer(std::cout, format, tagger.genres(), a.top_k, a.segments);
    int failed = 0;
    auto report_error = [&](const std::string& file, const std::string& reason) {
        ++failed;
        const std::string line =
            reason.find(file) == std::string::npos ? file + ": " + reason : reason;
        std::cerr << "gnet: " << line << "\n";
        printer.error(file, line);
    };
    printer.begin();
    for (const std::string& m : missing)
        report_error(m, m + ": no such file or folder");
    tagger.tag_files(
        files,
        [&](const TrackPrediction& t) {
            char secs[32];
            std::snprintf(secs, sizeof secs, "%.1f", t.duration_s);
            if (t.mostly_padding)
                std::cerr << "gnet: note: " << t.file << " lasts " << secs
                          << " s, less than half a chunk: its one chunk is mostly zero padding, so "
                             "its scores are shown but no genre is marked\n";
            else if (t.padded)
                std::cerr << "gnet: note: " << t.file << " is shorter than one chunk (" << secs
                          << " s); zero-padded\n";
            printer.track(t);
        },
        report_error);
    printer.end();
    const size_t total = files.size() + missing.size();
    if (failed)
        std::cerr << "gnet: " << failed << " of " << total << " inputs could not be tagged\n";
    return failed ? 1 : 0;
}

}  // namespace

void register_predict(CLI::App& app, Context& ctx) {
    auto a = std::make_shared<PredictArgs>();
    CLI::App* cmd = app.add_subcommand("predict", "Tag audio files with their most likely genres");
    cmd->add_option("inputs", a->inputs, "Audio files and folders (searched recursively)")
        ->required();
    cmd->add_option("--model,-m", a->model,
                    "Checkpoint from gnet train, or a torchvision-named "
                    "ResNet18 state_dict saved as .safetensors")
        ->capture_default_str();
    cmd->add_option("--strategy", a->strategy, "Aggregate chunk scores per track: mean or max")
        ->check(CLI::IsMember({"mean", "max"}))
        ->capture_default_str();
    cmd->add_option("--top-k,-k", a->top_k, "Genres shown per track in the table")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->add_option("--threshold", a->threshold,
                    "One decision threshold for every genre (default: the checkpoint's)")
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--format,-f", a->format, "table, json or csv")
        ->check(CLI::IsMember({"table", "json", "csv"}))
        ->capture_default_str();
    cmd->add_flag("--segments", a->segments,
                  "Also show every window (10 s) with its start and end in seconds");
    cmd->add_option("--hop", a->hop,
                    "Seconds between window starts, up to 10 (default 10: non-overlapping); "
                    "e.g. 5 scores overlapping windows at 0, 5, 10, ... s")
        ->check(positive_real());
    cmd->add_option("--genres", a->genres_file,
                    "Genre names, one per line, for a checkpoint without gnet metadata")
        ->check(CLI::ExistingFile);
    cmd->add_option("--batch", a->batch, "Chunks per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd->add_option("--jobs,-j", a->jobs, "Decoding threads (0 = all cores)")
        ->check(non_negative_integer())
        ->capture_default_str();
    add_device_option(*cmd, a->device);
    add_precision_option(*cmd);
    cmd->footer(
        "Examples:\n"
        "  gnet predict song.mp3 --model run/best.safetensors\n"
        "  gnet predict album/ --model run/best.safetensors --strategy max --top-k 5\n"
        "  gnet predict a.flac b.ogg --model m.safetensors --format json --segments | jq .\n"
        "  gnet predict live.mp3 --model m.safetensors --hop 2.5 --segments   overlapping windows\n"
        "  gnet predict music/ --model torch_resnet18.safetensors --genres genres.txt --format "
        "csv");
    cmd->callback([a, cmd, &ctx] { ctx.exit_code = run_predict(*a, cmd->count("--model") > 0); });
}

}  // namespace gnet::cli
