// The training loop and the evaluation of a split.
//
// train(): ResNet18 (nn/resnet18.h) on the train split of a prepared folder, validation after
// every epoch at chunk level and at track level (mean and max aggregation of chunk probabilities).
// RUN_DIR receives, each epoch and atomically:
//   last.safetensors       the model after the epoch (checkpoint format of nn/checkpoint.h)
//   best.safetensors       the epoch with the best selection score (TrainOptions::select:
//                          validation track-level mAP by default, or the validation loss, or
//                          macro F1 at 0.5); ties keep the earlier epoch. With EMA on, the
//                          averaged weights (train/weight_average.h) are what is validated and
//                          saved as best.safetensors (last.safetensors keeps the raw weights
//                          for --resume; the average itself is in optimizer.safetensors)
//   optimizer.safetensors  Adam moments + step, and in its metadata "gnet.train_state" (JSON: the
//                          epoch, best epoch and score, epochs without improvement, the history
//                          of the curves) for --resume
//   metrics.csv            one row per epoch, every figure (n/a cells are empty)
//   config.json            the options of the run
//   curves.png             loss (top) and macro F1 (bottom) per epoch, train vs validation,
//                          labelled, with the best epoch marked (train/curves.cpp)
// An epoch is committed as one unit (both files written as *.next.safetensors, then renamed), the
// run folder is locked for the run, and stale temporaries of killed runs are removed.
// Resuming takes the run's options from config.json (a conflicting option given on the command
// line is refused by name), loads the newest (model, optimizer) pair of one epoch and continues
// with the next epoch: the loader's order and
// SpecAugment, balanced sampling and mixup are pure functions of (seed, epoch) and the model,
// the optimizer file (Adam moments, the EMA) hold everything else, so on the CPU the resumed run
// reproduces the uninterrupted one bit for bit.
//
// The recipe (every lever measured in docs/training.md): linear warm-up then cosine decay of the
// learning rate, AdamW with weight decay, BCE positive weights, SpecAugment, mixup, balanced
// sampling, an EMA of the weights, selection by validation mAP, thresholds by policy
// (train/thresholds.h); --init starts from another checkpoint (train/transfer.h), optionally with
// the backbone frozen for the first epochs.
//
// Training F1 (for the curves) is computed from each step's own forward pass (train mode, with
// augmentation), at chunk level.
//
// Data-parallel (started by `mpirun -np N gnet train ...`, train/communicator.h): every rank
// builds the same model (same seed, or the same resumed files), reads its part of every epoch
// (Loader rank/ranks) with `batch` samples per step, and averages its gradients with the others
// in buckets during backward (train/gradient_reducer.h); batch-norm statistics stay per rank, as
// in PyTorch DDP. Rank 0 alone locks and writes the run folder, validates, prints and decides
// early stopping; the others wait for each epoch's commit. The loader's parts depend only on
// (seed, epoch, ranks), so --resume works with any rank count.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "nn/device.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/metrics.h"
#include "train/thresholds.h"

namespace gnet {

class Network;

enum class Schedule { Constant, Cosine };
enum class PosWeightMode { None, Auto };
// What picks best.safetensors: validation track-level (mean) macro mAP, validation loss, or
// track-level macro F1 at threshold 0.5 (noisy on small validation sets).
enum class Selection { Map, Loss, F1 };
Selection parse_selection(const std::string& text);  // "map" | "loss" | "f1"; else UsageError
const char* selection_name(Selection s);

// The defaults are gnet's default recipe (docs/training.md: chosen from the ablation there);
// bare_recipe() switches every lever off.
struct TrainOptions {
    std::string data_dir;
    std::string out_dir = "run";
    int epochs = 30;
    int batch = 32;
    float lr = 1e-3f;
    float weight_decay = 0.01f;
    AdamMode optimizer = AdamMode::AdamW;
    Schedule schedule = Schedule::Cosine;
    float warmup_epochs = 1.f;  // linear warm-up from lr/steps to lr over this many epochs
    uint64_t seed = 0;
    bool resume = false;
    Device device = Device::CPU;
    ThresholdPolicy thresholds = ThresholdPolicy::Auto;
    int min_positives = 5;  // Auto: a genre's own threshold needs this many positive val tracks
    PosWeightMode pos_weight = PosWeightMode::None;  // auto: negatives/positives (docs/training.md)
    bool spec_augment = false;  // default off: no gain over random windows (docs/training.md)
    float mixup = 0.f;          // Beta(alpha, alpha) of mixup; 0 = off
    bool balanced = false;      // balanced sampling (train/dataset.h balanced_sample_weights)
    float ema = 0.f;            // EMA decay of the saved weights; 0 = off
    Selection select = Selection::Map;
    std::string init;                // --init CHECKPOINT ("" = fresh initialisation)
    int freeze_backbone_epochs = 0;  // with --init: train only fc for this many first epochs
    int patience = 0;  // early stopping after this many epochs without improvement; 0 = off
    int workers = 2;   // loader threads
    WindowMode windows = WindowMode::Auto;  // training samples (validation: always fixed)
    int shuffle_buffer = 512;               // the streaming loader's, in samples
    bool progress = false;  // progress bar on stderr (the CLI sets it when stderr is a terminal)
    // Names (as in config.json: "batch", "lr", ...) of the options the user gave explicitly; on
    // --resume the run's own config.json supplies the others, and a given one that differs is a
    // UsageError naming it.
    std::vector<std::string> given;
};

// Every recipe lever off: constant lr, Adam without weight decay, no warm-up, no positive weights,
// no SpecAugment, mixup, balanced sampling or EMA, fixed 0.5 thresholds (selection stays by mAP).
// Options named in `o.given` keep their value.
void apply_bare_recipe(TrainOptions& o);

// Learning rate of step `step` (0-based) out of `total_steps`: during the first `warmup_steps`
// linear, lr * (step + 1) / warmup_steps; then constant, or cosine from lr to 0 over the rest.
float scheduled_lr(Schedule s, float lr, int64_t step, int64_t total_steps,
                   int64_t warmup_steps = 0);

// Metrics of one split at the three levels.
struct SplitEvaluation {
    double loss = 0;                   // BCE-with-logits, mean over chunks x genres
    std::vector<float> chunk_probs;    // (chunks, G) sigmoid outputs, in the order of `chunks`
    std::vector<float> track_mean;     // (T, G)
    std::vector<float> track_targets;  // (T, G)
    MetricsReport chunk, track_mean_report, track_max_report;
};

// Runs the model in eval mode over `chunks` (batches of `batch`), computes the loss (with
// pos_weight when not empty) and the metrics with `thresholds` (empty = 0.5).
SplitEvaluation evaluate_split(Network& model, const PreparedData& data,
                               const std::vector<int>& chunks, int batch,
                               const std::vector<float>& thresholds,
                               const std::vector<float>& pos_weight, int workers = 2);

struct EpochRecord {
    int epoch = 0;  // 1-based
    double lr = 0;  // learning rate at the epoch's last step
    double train_loss = 0;
    double train_macro_f1 = 0;  // chunk level, from the training forward passes
    double val_loss = 0;
    double val_f1 = 0;   // track level, mean aggregation, macro F1 at 0.5
    double val_map = 0;  // track level, mean aggregation, macro AP (0 when undefined)
    double score = 0;    // the selection score (higher is better; -loss for Selection::Loss)
    double seconds = 0;
};

struct TrainResult {
    std::vector<EpochRecord> history;  // every epoch of the run, resumed ones included
    int best_epoch = 0;
    double best_score = 0;  // the selection score of best_epoch
    bool stopped_early = false;
    int rank = 0, ranks = 1;        // data-parallel: this process's rank; only rank 0 reports
    std::string init_summary;       // what --init loaded ("" without --init)
    std::string threshold_summary;  // the thresholds of best.safetensors and how each was chosen
};

// Trains as described above; epoch summaries go to `out` (one line each).
TrainResult train(const TrainOptions& options, std::ostream& out);

// The divergence guard of every step: an Error naming the step when `loss` is NaN or infinite.
// `last_good` says which checkpoint is kept ("" = none written yet).
void check_finite_loss(float loss, int epoch, int step, int steps_per_epoch,
                       const std::string& last_good);

// Draws curves.png (loss and F1 panels) for a history.
void write_curves_png(const std::string& path, const std::vector<EpochRecord>& history);

}  // namespace gnet
