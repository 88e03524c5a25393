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
    std::string recipe = "default";
    std::string optimizer = "adamw";
    std::string schedule = "cosine";
    std::string pos_weight = "none";
    std::string thresholds = "auto";
    std::string select = "map";
    bool tune_thresholds = false;
    std::string windows = "auto";
};

void run_train(const TrainArgs& a, const CLI::App& cmd) {
    TrainOptions o = a.opt;
    for (const char* name : {"batch",
                             "lr",
                             "weight_decay",
                             "optimizer",
                             "schedule",
                             "warmup_epochs",
                             "seed",
                             "thresholds",
                             "min_positives",
                             "pos_weight",
                             "spec_augment",
                             "mixup",
                             "balanced",
                             "ema",
                             "select",
                             "init",
                             "freeze_backbone_epochs",
                             "epochs",
                             "windows",
                             "shuffle_buffer"}) {
        std::string flag = std::string("--") + name;
        std::replace(flag.begin(), flag.end(), '_', '-');
        if (cmd.count(flag) > 0) o.given.push_back(name);
    }
    if (cmd.count("--tune-thresholds") > 0) {
        if (cmd.count("--thresholds") > 0)
            throw UsageError("--tune-thresholds is --thresholds per-genre: give only one of them");
        o.given.push_back("thresholds");
    }
    install_interrupt_handler();
    o.optimizer = a.optimizer == "adamw" ? AdamMode::AdamW : AdamMode::Adam;
    o.schedule = a.schedule == "cosine" ? Schedule::Cosine : Schedule::Constant;
    o.pos_weight = a.pos_weight == "auto" ? PosWeightMode::Auto : PosWeightMode::None;
    o.thresholds =
        a.tune_thresholds ? ThresholdPolicy::PerGenre : parse_threshold_policy(a.thresholds);
    o.select = parse_selection(a.select);
    o.windows = parse_window_mode(a.windows);
    if (a.recipe == "bare") {
        if (o.resume)
            throw UsageError("--recipe with --resume: a resumed run keeps its own options");
        apply_bare_recipe(o);
    }
    o.device = resolve_device(parse_device_choice(a.device), &std::cerr);
    o.progress = ::isatty(STDERR_FILENO) != 0;
    TrainResult r = train(o, std::cout);
    if (r.rank != 0) return;  // data-parallel: rank 0 reports
    if (!r.threshold_summary.empty())
        std::cout << "decision thresholds of best.safetensors ("
                  << threshold_policy_name(o.thresholds)
                  << ", tuned on validation where a genre has at least " << o.min_positives
                  << " positive tracks):\n"
                  << r.threshold_summary;
    std::cout << "best: epoch " << r.best_epoch << ", selection score (val "
              << (o.select == Selection::Map    ? "track mAP"
                  : o.select == Selection::Loss ? "loss, negated"
                                                : "track macro F1")
              << ") " << r.best_score << " -> " << o.out_dir << "/best.safetensors\n";
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
    cmd->add_option("--recipe", args->recipe,
                    "default: the measured recipe (every default below); bare: every lever off "
                    "(constant lr, Adam, no weight decay, warm-up, positive weights, SpecAugment, "
                    "mixup, balanced sampling or EMA; fixed chunks; thresholds 0.5); options given "
                    "explicitly still apply")
        ->check(CLI::IsMember({"default", "bare"}))
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
    cmd->add_option("--warmup-epochs", args->opt.warmup_epochs,
                    "Linear learning-rate warm-up over this many epochs (fractions allowed)")
        ->check(non_negative_real())
        ->capture_default_str();
    cmd->add_option("--mixup", args->opt.mixup,
                    "Mixup of training pairs with lambda ~ Beta(A, A) (0 = off)")
        ->check(non_negative_real())
        ->capture_default_str();
    cmd->add_flag("--balanced,!--no-balanced", args->opt.balanced,
                  "Draw training chunks with replacement, rare genres as often as common ones "
                  "(default off)");
    cmd->add_option("--ema", args->opt.ema,
                    "Validate and save an exponential moving average of the weights with this "
                    "decay (0 = off)")
        ->check(CLI::Range(0.0, 0.99999))
        ->capture_default_str();
    cmd->add_option("--select", args->select,
                    "What picks best.safetensors: map (val track mAP), loss (val loss) or f1 "
                    "(val track macro F1 at 0.5)")
        ->check(CLI::IsMember({"map", "loss", "f1"}))
        ->capture_default_str();
    cmd->add_option("--init", args->opt.init,
                    "Start from this checkpoint's weights (gnet, or a torchvision-named ResNet18 "
                    ".safetensors): every tensor that fits is kept, the head is re-initialised "
                    "when the genres differ")
        ->check(CLI::ExistingFile);
    cmd->add_option("--freeze-backbone-epochs", args->opt.freeze_backbone_epochs,
                    "With --init: train only the head (fc) for this many first epochs")
        ->check(non_negative_integer())
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
    cmd->add_option("--thresholds", args->thresholds,
                    "Decision thresholds stored in the checkpoints: fixed (0.5), global (one "
                    "tuned for all genres), per-genre (each tuned), auto (per genre where "
                    "validation has --min-positives positive tracks, else the global one)")
        ->check(CLI::IsMember({"fixed", "global", "auto", "per-genre"}))
        ->capture_default_str();
    cmd->add_option("--min-positives", args->opt.min_positives,
                    "--thresholds auto: positive validation tracks a genre needs for its own")
        ->check(positive_integer())
        ->capture_default_str();
    cmd->add_flag("--tune-thresholds", args->tune_thresholds, "The same as --thresholds per-genre");
    cmd->add_option("--pos-weight", args->pos_weight,
                    "none (default), or auto: BCE positive weight = negatives/positives per genre "
                    "(clamped to [1, 100]; it hurt on the measured small sets, docs/training.md)")
        ->check(CLI::IsMember({"auto", "none"}))
        ->capture_default_str();
    cmd->add_flag("--spec-augment,!--no-spec-augment", args->opt.spec_augment,
                  "Random time and frequency masks on training batches (default off: with "
                  "random windows it did not help on the measured sets)");
    cmd->add_option("--patience", args->opt.patience,
                    "Stop after N epochs without a better selection score (0 = never)")
        ->check(non_negative_integer())
        ->capture_default_str();
    cmd->add_option("--windows", args->windows,
                    "Training samples: random (a 10 s window anywhere in the chunk's stretch of "
                    "track, new every epoch; needs shards), fixed (each track's 10 s chunks) or "
                    "auto (random for shards, fixed for chunk files)")
        ->check(CLI::IsMember({"auto", "fixed", "random"}))
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
        "  gnet train --data data --out runs/b --recipe bare              every lever off\n"
        "  gnet train --data data --out runs/c --mixup 0.2 --ema 0.99     the default plus two\n"
        "  gnet train --data new --out runs/t --init runs/a/best.safetensors "
        "--freeze-backbone-epochs 2");
    cmd->callback([args, cmd] { run_train(*args, *cmd); });
}

}  // namespace gnet::cli
