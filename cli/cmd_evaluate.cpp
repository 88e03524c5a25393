// gnet evaluate: the metrics report of a checkpoint on a prepared split, at chunk level and at
// track level (mean and max aggregation), with the checkpoint's decision thresholds.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/evaluation_report.h"
#include "nn/device.h"

namespace gnet::cli {

namespace {

struct EvaluateArgs {
    std::string data_dir, model_path, split = "val", device = "auto";
    int batch = 32;
};

void run_evaluate(const EvaluateArgs& a) {
    const Device device = resolve_device(parse_device_choice(a.device), &std::cerr);
    print_evaluation(a.model_path, a.data_dir, a.split, device, a.batch, ReportLevels::All,
                     std::cout);
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
        ->check(positive_integer())
        ->capture_default_str();
    add_device_option(*cmd, args->device);
    add_precision_option(*cmd);
    cmd->footer(
        "Examples:\n"
        "  gnet evaluate --data data --model runs/a/best.safetensors\n"
        "  gnet evaluate --data data --model runs/a/best.safetensors --split train --device cpu");
    cmd->callback([args] { run_evaluate(*args); });
}

}  // namespace gnet::cli
