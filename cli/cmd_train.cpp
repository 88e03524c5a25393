// gnet train: ResNet18 on a prepared folder (train/trainer.h does the work).
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/evaluation_report.h"
#include "nn/device.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace gnet::cli {

namespace {

struct TrainArgs {
    TrainOptions opt;
    std::string device = "auto";
    std::string optimizer = "adam";
    std::string schedule = "constant";
    std::string pos_weight = "none";
    std::string windows = "fixed";
};

void run_train(const TrainArgs& a, const CLI::App& cmd) {
    TrainOptions o = a.opt;
    for (const char* name :
         {"batch", "lr", "weight_decay", "optimizer", "schedule", "seed", "tune_thresholds",
          "pos_weight", "spec_augment", "epochs", "windows", "shuffle_buffer"}) {
        std::string flag = std::string("--") + name;
        std::replace(flag.begin(), flag.end(), '_', '-');
        if (cmd.count(flag) > 0) o.given.push_back(name);
    }
    install_interrupt_handler();
    o.device = resolve_device(parse_device_choice(a.device), &std::cerr);
    o.optimizer = a.optimizer == "adamw" ? AdamMode::AdamW : AdamMode::Adam;
    o.schedule = a.schedule == "cosine" ? Schedule::Cosine : Schedule::Constant;
    o.pos_weight = a.pos_weight == "auto" ? PosWeightMode::Auto : PosWeightMode::None;
    o.windows = parse_window_mode(a.windows);
    o.progress = ::isatty(STDERR_FILENO) != 0;
    TrainResult r = train(o, std::cout);
    if (r.rank != 0) return;  // data-parallel: rank 0 reports
    std::cout << "best: epoch " << r.best_epoch << ", val track macro F1 " << r.best_f1 << " -> "
              << o.out_dir << "/best.safetensors\n";
    if (r.best_epoch > 0) {
        // The per-genre table of the best checkpoint, as `gnet evaluate` prints it.
        std::cout << "\n";
        print_evaluation(o.out_dir + "/best.safetensors", o.data_dir, "val", o.device, o.batch,
                         ReportLevels::TrackMean, std::cout);
    }
}

}  // namespace

void register_train(CLI::App& app, Context&) {
    auto args = std::make_shared<TrainArgs>();
    CLI::App* cmd =
        app.add_subcommand("train", "Train ResNet18 on a folder made by 'gnet prepare'");
    cmd->add_option("--data", args->opt.data_dir,
                    "Prepared folder (genres.txt, manifest.csv, shards/ or train/ + val/)")
        ->required();
    cmd->add_option("--out,-o", args->opt.out_dir,
                    "Run folder: best/last.safetensors, optimizer.safetensors, metrics.csv, "
                    "config.json, curves.png")
        ->capture_default_str();
    cmd->add_option("--epochs", args->opt.epochs, "Epochs to train (in total, when resuming)")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->add_option("--batch", args->opt.batch,
                    "Batch size (lower it when the GPU runs out of memory)")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->add_option("--lr", args->opt.lr, "Learning rate")
        ->check(positive_real())
        ->capture_default_str();
    cmd->add_option("--weight-decay", args->opt.weight_decay, "Weight decay")
        ->check(non_negative_real())
        ->capture_default_str();
    cmd->add_option("--optimizer", args->optimizer,
                    "adam (L2 in the gradient) or adamw (decoupled)")
        ->check(CLI::IsMember({"adam", "adamw"}))
        ->capture_default_str();
    cmd->add_option("--schedule", args->schedule, "Learning rate: constant, or cosine decay to 0")
        ->check(CLI::IsMember({"constant", "cosine"}))
        ->capture_default_str();
    cmd->add_option("--seed", args->opt.seed,
                    "Seed of the initial weights, shuffling and augmentation")
        ->capture_default_str();
    cmd->add_flag("--resume", args->opt.resume,
                  "Continue the run in --out after its last epoch, with the run's own options "
                  "(from its config.json; only --epochs, --workers, --device and --patience may "
                  "change)");
    add_device_option(*cmd, args->device);
    add_precision_option(*cmd);
    cmd->add_flag("--tune-thresholds", args->opt.tune_thresholds,
                  "Store per-genre thresholds that maximise validation F1 in the checkpoints");
    cmd->add_option(
           "--pos-weight", args->pos_weight,
           "auto: BCE positive weight = negatives/positives per genre (clamped to [1, 100])")
        ->check(CLI::IsMember({"auto", "none"}))
        ->capture_default_str();
    cmd->add_flag("--spec-augment", args->opt.spec_augment,
                  "Random time and frequency masks on training batches");
    cmd->add_option("--patience", args->opt.patience,
                    "Stop after N epochs without a better validation F1 (0 = never)")
        ->check(non_negative_integer())
        ->capture_default_str();
    cmd->add_option("--windows", args->windows,
                    "Training samples: fixed (each track's 10 s chunks) or random (a 10 s window "
                    "anywhere in the chunk's stretch of track, new every epoch; needs shards)")
        ->check(CLI::IsMember({"fixed", "random"}))
        ->capture_default_str();
    cmd->add_option("--shuffle-buffer", args->opt.shuffle_buffer,
                    "Samples the streaming loader shuffles among (shards; memory: 220 KB each)")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->add_option("--workers", args->opt.workers, "Data loading threads")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->footer(
        "Examples:\n"
        "  gnet train --data data --out runs/a --epochs 30 --batch 32\n"
        "  gnet train --data data --out runs/a --epochs 40 --resume      continue to epoch 40\n"
        "  gnet train --data data --out runs/b --optimizer adamw --weight-decay 0.01 \\\n"
        "             --schedule cosine --pos-weight auto --spec-augment --tune-thresholds "
        "--patience 5");
    cmd->callback([args, cmd] { run_train(*args, *cmd); });
}

}  // namespace gnet::cli
