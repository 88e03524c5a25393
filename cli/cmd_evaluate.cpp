// gnet evaluate: the metrics report of a checkpoint on a prepared split, at chunk level and at
// track level (mean and max aggregation), with the checkpoint's decision thresholds.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/device.h"
#include "nn/resnet18.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace gnet::cli {

namespace {

struct EvaluateArgs {
    std::string data_dir, model_path, split = "val", device = "auto";
    int batch = 32;
};

void print_level(const std::string& title, const MetricsReport& r,
                 const std::vector<std::string>& genres) {
    std::cout << "\n" << title << "\n" << format_metrics_table(r, genres);
}

void run_evaluate(const EvaluateArgs& a) {
    const Device device = resolve_device(parse_device_choice(a.device), &std::cerr);
    const Split split = parse_split(a.split);
    const PreparedData data = load_prepared(a.data_dir);
    const Checkpoint ck = read_checkpoint(a.model_path);
    if (ck.meta.genres != data.genres)
        throw Error(a.model_path + ": the model's genres differ from " + a.data_dir + "/genres.txt");
    const std::vector<int> chunks = data.split_chunks(split);
    if (chunks.empty())
        throw Error(a.data_dir + "/manifest.csv: no chunk in the " + a.split + " split");
    ResNet18Config cfg;
    cfg.num_genres = data.num_genres();
    cfg.max_batch = a.batch;
    ResNet18 model(cfg, device);
    load_checkpoint(ck, model);
    SplitEvaluation ev = evaluate_split(model, data, chunks, a.batch, ck.meta.thresholds, {});
    const int tracks = int(ev.track_targets.size()) / data.num_genres();
    std::cout << a.model_path << " on " << a.data_dir << " (" << a.split << "): " << chunks.size()
              << " chunks of " << tracks << " tracks, loss " << ev.loss << "\n";
    std::cout << "decision thresholds (from the checkpoint):";
    for (size_t g = 0; g < data.genres.size(); ++g)
        std::cout << " " << data.genres[g] << " "
                  << (ck.meta.thresholds.empty() ? 0.5f : ck.meta.thresholds[g]);
    std::cout << "\n";
    print_level("chunk level", ev.chunk, data.genres);
    print_level("track level, mean of chunk probabilities", ev.track_mean_report, data.genres);
    print_level("track level, max of chunk probabilities", ev.track_max_report, data.genres);
}

}  // namespace

void register_evaluate(CLI::App& app, Context&) {
    auto args = std::make_shared<EvaluateArgs>();
    CLI::App* cmd = app.add_subcommand("evaluate", "Metrics of a model on a prepared split");
    cmd->add_option("--data", args->data_dir, "Prepared folder (from 'gnet prepare')")->required();
    cmd->add_option("--model,-m", args->model_path, "Checkpoint (.safetensors)")->required();
    cmd->add_option("--split", args->split, "Which split to evaluate")
        ->check(CLI::IsMember({"val", "train"}))
        ->capture_default_str();
    cmd->add_option("--batch", args->batch, "Chunks per forward pass")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    add_device_option(*cmd, args->device);
    cmd->footer(
        "Examples:\n"
        "  gnet evaluate --data data --model runs/a/best.safetensors\n"
        "  gnet evaluate --data data --model runs/a/best.safetensors --split train --device cpu");
    cmd->callback([args] { run_evaluate(*args); });
}

}  // namespace gnet::cli
