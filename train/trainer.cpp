#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <ostream>

#include "kernels/bce.h"
#include "kernels/error.h"
#include "kernels/sigmoid.h"
#include "nn/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/network.h"
#include "nn/resnet18.h"
#include "nn/safetensors.h"
#include "train/communicator.h"
#include "train/csv.h"
#include "train/gradient_reducer.h"
#include "train/interrupt.h"
#include "train/loader.h"
#include "train/mixup.h"
#include "train/transfer.h"
#include "train/weight_average.h"

namespace gnet {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;

float scheduled_lr(Schedule s, float lr, int64_t step, int64_t total_steps, int64_t warmup_steps) {
    if (warmup_steps > 0 && step < warmup_steps)
        return float(double(lr) * double(step + 1) / double(warmup_steps));
    if (s == Schedule::Constant || total_steps <= warmup_steps) return lr;
    double t =
        std::clamp(double(step - warmup_steps) / double(total_steps - warmup_steps), 0.0, 1.0);
    return float(0.5 * double(lr) * (1.0 + std::cos(kPi * t)));
}

Selection parse_selection(const std::string& text) {
    if (text == "map") return Selection::Map;
    if (text == "loss") return Selection::Loss;
    if (text == "f1") return Selection::F1;
    throw UsageError("unknown --select '" + text + "' (expected map, loss or f1)");
}

const char* selection_name(Selection s) {
    return s == Selection::Loss ? "loss" : s == Selection::F1 ? "f1" : "map";
}

void apply_bare_recipe(TrainOptions& o) {
    auto given = [&](const char* name) {
        return std::find(o.given.begin(), o.given.end(), name) != o.given.end();
    };
    if (!given("weight_decay")) o.weight_decay = 0.f;
    if (!given("optimizer")) o.optimizer = AdamMode::Adam;
    if (!given("schedule")) o.schedule = Schedule::Constant;
    if (!given("warmup_epochs")) o.warmup_epochs = 0.f;
    if (!given("thresholds")) o.thresholds = ThresholdPolicy::Fixed;
    if (!given("pos_weight")) o.pos_weight = PosWeightMode::None;
    if (!given("spec_augment")) o.spec_augment = false;
    if (!given("mixup")) o.mixup = 0.f;
    if (!given("balanced")) o.balanced = false;
    if (!given("ema")) o.ema = 0.f;
    if (!given("windows")) o.windows = WindowMode::Fixed;
}

namespace {

Tensor host_view(const float* p, Shape shape) {
    return Tensor::view(const_cast<float*>(p), std::move(shape), Device::CPU);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string opt_cell(const std::optional<double>& v) {
    return v ? fmt("%.6f", *v) : std::string();
}

// "1:05" / "1:02:03"
std::string clock_text(double seconds) {
    long s = long(std::max(0.0, seconds) + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

void progress_line(const std::string& what, int done, int total, double rate, double loss,
                   double eta) {
    const int width = 24;
    int filled = total > 0 ? done * width / total : width;
    std::string bar(size_t(filled), '#');
    bar += std::string(size_t(width - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %d/%d  %.1f samples/s  loss %.4f  ETA %s   ", what.c_str(),
                 bar.c_str(), done, total, rate, loss, clock_text(eta).c_str());
    std::fflush(stderr);
}

void clear_progress() {
    std::fprintf(stderr, "\r%80s\r", "");
    std::fflush(stderr);
}

// ---------------------------------------------------------------------------------------------
// metrics.csv
// ---------------------------------------------------------------------------------------------
const char* kLevels[3] = {"chunk", "track_mean", "track_max"};

std::vector<std::string> metrics_header(const std::vector<std::string>& genres) {
    std::vector<std::string> h = {"epoch",          "lr",         "seconds",
                                  "samples_per_s",  "train_loss", "train_micro_f1",
                                  "train_macro_f1", "val_loss",   "val_track_mean_macro_f1_tuned",
                                  "selection_score"};
    for (const char* level : kLevels) {
        std::string p = std::string("val_") + level + "_";
        for (const char* k : {"micro_precision", "micro_recall", "micro_f1", "macro_precision",
                              "macro_recall", "macro_f1", "map", "roc_auc"})
            h.push_back(p + k);
        for (const std::string& g : genres)
            for (const char* k : {"precision", "recall", "f1", "ap", "roc_auc"})
                h.push_back(p + g + "_" + k);
    }
    return h;
}

std::vector<std::string> metrics_row(const EpochRecord& e, double samples_per_s,
                                     const MetricsReport& train, const SplitEvaluation& val,
                                     const std::optional<double>& tuned_f1) {
    std::vector<std::string> r = {std::to_string(e.epoch),     fmt("%.6g", e.lr),
                                  fmt("%.3f", e.seconds),      fmt("%.2f", samples_per_s),
                                  fmt("%.6f", e.train_loss),   fmt("%.6f", train.micro_f1),
                                  fmt("%.6f", train.macro_f1), fmt("%.6f", e.val_loss),
                                  opt_cell(tuned_f1),          fmt("%.6f", e.score)};
    for (const MetricsReport* m : {&val.chunk, &val.track_mean_report, &val.track_max_report}) {
        bool any = m->genres_evaluated > 0;
        for (double v : {m->micro_precision, m->micro_recall, m->micro_f1})
            r.push_back(fmt("%.6f", v));
        for (double v : {m->macro_precision, m->macro_recall, m->macro_f1})
            r.push_back(any ? fmt("%.6f", v) : std::string());
        r.push_back(opt_cell(m->macro_ap));
        r.push_back(opt_cell(m->macro_roc_auc));
        for (const GenreMetrics& g : m->per_genre)
            for (const auto* v : {&g.precision, &g.recall, &g.f1, &g.ap, &g.roc_auc})
                r.push_back(opt_cell(*v));
    }
    return r;
}

// ---------------------------------------------------------------------------------------------
// Resume state (metadata of optimizer.safetensors)
// ---------------------------------------------------------------------------------------------
struct RunState {
    int epoch = 0;  // epochs completed
    int best_epoch = 0;
    double best_score = 0;
    int bad_epochs = 0;
    std::vector<EpochRecord> history;
};

OrderedJson run_state_json(const RunState& s) {
    OrderedJson j = {{"epoch", s.epoch},
                     {"best_epoch", s.best_epoch},
                     {"best_score", s.best_score},
                     {"bad_epochs", s.bad_epochs}};
    OrderedJson h = OrderedJson::array();
    for (const EpochRecord& e : s.history)
        h.push_back({{"epoch", e.epoch},
                     {"lr", e.lr},
                     {"train_loss", e.train_loss},
                     {"train_macro_f1", e.train_macro_f1},
                     {"val_loss", e.val_loss},
                     {"val_f1", e.val_f1},
                     {"val_map", e.val_map},
                     {"score", e.score},
                     {"seconds", e.seconds}});
    j["history"] = std::move(h);
    return j;
}

RunState parse_run_state(const std::string& text, const std::string& path) {
    try {
        JsonLimits limits;
        limits.max_bytes = size_t(16) << 20;
        limits.max_depth = 4;
        Json j = json_parse(text, limits);
        RunState s;
        s.epoch = int(json_int(json_key(j, "epoch"), "'epoch'"));
        s.best_epoch = int(json_int(json_key(j, "best_epoch"), "'best_epoch'"));
        s.best_score = json_number(json_key(j, "best_score"), "'best_score'");
        s.bad_epochs = int(json_int(json_key(j, "bad_epochs"), "'bad_epochs'"));
        const Json& history = json_key(j, "history");
        if (!history.is_array()) throw JsonError("JSON: 'history' must be an array");
        for (const Json& r : history) {
            EpochRecord e;
            e.epoch = int(json_int(json_key(r, "epoch"), "'epoch'"));
            e.lr = json_number(json_key(r, "lr"), "'lr'");
            e.train_loss = json_number(json_key(r, "train_loss"), "'train_loss'");
            e.train_macro_f1 = json_number(json_key(r, "train_macro_f1"), "'train_macro_f1'");
            e.val_loss = json_number(json_key(r, "val_loss"), "'val_loss'");
            e.val_f1 = json_number(json_key(r, "val_f1"), "'val_f1'");
            e.val_map = json_number(json_key(r, "val_map"), "'val_map'");
            e.score = json_number(json_key(r, "score"), "'score'");
            e.seconds = json_number(json_key(r, "seconds"), "'seconds'");
            s.history.push_back(e);
        }
        if (s.epoch < 0 || s.epoch > 1000000 || int(s.history.size()) != s.epoch)
            throw JsonError("JSON: epoch " + std::to_string(s.epoch) + " with " +
                            std::to_string(s.history.size()) + " history rows");
        return s;
    } catch (const JsonError& e) {
        throw Error(path + ": metadata gnet.train_state: " + e.what());
    }
}

const char* kStateKey = "gnet.train_state";

OrderedJson options_json(const TrainOptions& o, const PreparedData& data) {
    OrderedJson j;
    j["data"] = o.data_dir;
    j["out"] = o.out_dir;
    j["epochs"] = o.epochs;
    j["batch"] = o.batch;
    j["lr"] = double(o.lr);
    j["weight_decay"] = double(o.weight_decay);
    j["optimizer"] = o.optimizer == AdamMode::AdamW ? "adamw" : "adam";
    j["schedule"] = o.schedule == Schedule::Cosine ? "cosine" : "constant";
    j["seed"] = o.seed;
    j["device"] = device_name(o.device);
    j["warmup_epochs"] = double(o.warmup_epochs);
    j["thresholds"] = threshold_policy_name(o.thresholds);
    j["min_positives"] = o.min_positives;
    j["pos_weight"] = o.pos_weight == PosWeightMode::Auto ? "auto" : "none";
    j["spec_augment"] = o.spec_augment;
    j["mixup"] = double(o.mixup);
    j["balanced"] = o.balanced;
    j["ema"] = double(o.ema);
    j["select"] = selection_name(o.select);
    j["init"] = o.init;
    j["freeze_backbone_epochs"] = o.freeze_backbone_epochs;
    j["patience"] = o.patience;
    j["windows"] = window_mode_name(o.windows);
    j["shuffle_buffer"] = o.shuffle_buffer;
    j["genres"] = data.genres;
    return j;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------
SplitEvaluation evaluate_split(Network& model, const PreparedData& data,
                               const std::vector<int>& chunks, int batch,
                               const std::vector<float>& thresholds,
                               const std::vector<float>& pos_weight, int workers) {
    const int G = data.num_genres();
    GNET_CHECK(model.num_genres() == G, "model has " + std::to_string(model.num_genres()) +
                                            " outputs for " + std::to_string(G) + " genres");
    GNET_CHECK(!chunks.empty(), "no chunk to evaluate");
    const int N = int(chunks.size());
    LoaderOptions lo;
    lo.batch = std::min(batch, model.config().max_batch);
    lo.shuffle = false;
    lo.workers = workers;
    lo.pinned = model.device() == Device::CUDA;
    Loader loader(data, chunks, lo);
    loader.start_epoch(0);

    SplitEvaluation ev;
    std::vector<float> targets(size_t(N) * size_t(G));
    ev.chunk_probs.resize(size_t(N) * size_t(G));
    double loss_sum = 0;
    const Mode saved = model.mode();
    model.set_mode(Mode::Eval);
    int done = 0;
    while (const Batch* b = loader.next()) {
        Tensor logits = model.forward(host_view(b->x, {b->n, 1, kMelBands, kFrames}));
        std::vector<float> z = logits.to_host();
        float loss = 0;
        cpu::bce_logits_forward_backward(b->n, G, z.data(), b->y,
                                         pos_weight.empty() ? nullptr : pos_weight.data(), &loss,
                                         nullptr);
        loss_sum += double(loss) * b->n;
        cpu::sigmoid_forward(int64_t(z.size()), z.data(), &ev.chunk_probs[size_t(done) * G]);
        std::copy_n(b->y, size_t(b->n) * G, &targets[size_t(done) * G]);
        done += b->n;
    }
    model.set_mode(saved);
    ev.loss = loss_sum / N;
    TrackGroups groups = group_by_track(data, chunks);
    ev.track_targets = track_targets(data, chunks, groups);
    ev.track_mean = aggregate_tracks(N, G, ev.chunk_probs.data(), groups.chunk_track,
                                     groups.count(), Aggregation::Mean);
    std::vector<float> track_max = aggregate_tracks(N, G, ev.chunk_probs.data(), groups.chunk_track,
                                                    groups.count(), Aggregation::Max);
    ev.chunk = compute_metrics(N, G, ev.chunk_probs.data(), targets.data(), thresholds);
    ev.track_mean_report = compute_metrics(groups.count(), G, ev.track_mean.data(),
                                           ev.track_targets.data(), thresholds);
    ev.track_max_report =
        compute_metrics(groups.count(), G, track_max.data(), ev.track_targets.data(), thresholds);
    return ev;
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------
void check_finite_loss(float loss, int epoch, int step, int steps_per_epoch,
                       const std::string& last_good) {
    if (std::isfinite(loss)) return;
    const int64_t global = int64_t(epoch - 1) * steps_per_epoch + step;
    throw Error(std::string("training diverged: the loss is ") +
                (std::isnan(loss) ? "NaN" : "infinite") + " at epoch " + std::to_string(epoch) +
                ", step " + std::to_string(step) + " of " + std::to_string(steps_per_epoch) +
                " (global step " + std::to_string(global) + "); " +
                (last_good.empty() ? std::string("no checkpoint was written") : last_good) +
                "; try a lower --lr");
}

namespace {

// The options a resumed run takes from its config.json (changing them would not continue the same
// run); the others (--epochs, --workers, --device, --patience) may change on --resume.
constexpr const char* kRunOptions[] = {"batch",
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
                                       "windows",
                                       "shuffle_buffer"};

// The run's own options for --resume; an option given on the command line that conflicts is a
// UsageError naming it.
TrainOptions options_for_resume(const TrainOptions& given, const std::string& config_path) {
    OrderedJson now = options_json(given, PreparedData{});
    Json run;
    try {
        JsonLimits limits;
        limits.max_bytes = size_t(1) << 20;
        run = json_parse(read_file(config_path), limits);
        if (!run.is_object()) throw JsonError("JSON: not an object");
    } catch (const JsonError& e) {
        throw Error(config_path + ": " + e.what());
    }
    TrainOptions o = given;
    for (const char* key : kRunOptions) {
        if (!run.contains(key)) continue;
        const Json& theirs = run[key];
        const bool explicit_option =
            std::find(given.given.begin(), given.given.end(), key) != given.given.end();
        if (explicit_option && json_dump(Json::parse(json_dump(now[key]))) != json_dump(theirs)) {
            std::string flag = std::string("--") + key;
            std::replace(flag.begin() + 2, flag.end(), '_', '-');
            throw UsageError(flag + " " + json_dump(now[key]) + " differs from this run's " +
                             json_dump(theirs) + " (" + config_path +
                             "); --resume continues a run with its own options: leave " + flag +
                             " out, or start a new run in another --out");
        }
        try {
            const std::string k = key;
            if (k == "batch") o.batch = int(json_int(theirs, k));
            if (k == "lr") o.lr = float(json_number(theirs, k));
            if (k == "weight_decay") o.weight_decay = float(json_number(theirs, k));
            if (k == "optimizer")
                o.optimizer = json_string(theirs, k) == "adamw" ? AdamMode::AdamW : AdamMode::Adam;
            if (k == "schedule")
                o.schedule =
                    json_string(theirs, k) == "cosine" ? Schedule::Cosine : Schedule::Constant;
            if (k == "seed") o.seed = uint64_t(json_int(theirs, k));
            if (k == "warmup_epochs") o.warmup_epochs = float(json_number(theirs, k));
            if (k == "thresholds") o.thresholds = parse_threshold_policy(json_string(theirs, k));
            if (k == "min_positives") o.min_positives = int(json_int(theirs, k));
            if (k == "mixup") o.mixup = float(json_number(theirs, k));
            if (k == "balanced") o.balanced = theirs.get<bool>();
            if (k == "ema") o.ema = float(json_number(theirs, k));
            if (k == "select") o.select = parse_selection(json_string(theirs, k));
            if (k == "init") o.init = json_string(theirs, k);
            if (k == "freeze_backbone_epochs") o.freeze_backbone_epochs = int(json_int(theirs, k));
            if (k == "pos_weight")
                o.pos_weight =
                    json_string(theirs, k) == "auto" ? PosWeightMode::Auto : PosWeightMode::None;
            if (k == "spec_augment") o.spec_augment = theirs.get<bool>();
            if (k == "windows") o.windows = parse_window_mode(json_string(theirs, k));
            if (k == "shuffle_buffer") o.shuffle_buffer = int(json_int(theirs, k));
        } catch (const std::exception& e) {
            throw Error(config_path + ": '" + key + "': " + e.what());
        }
    }
    return o;
}

// The epoch a checkpoint or optimizer file says it holds; -1 when absent or unreadable.
int checkpoint_epoch(const std::string& path) {
    if (!fs::exists(path)) return -1;
    try {
        return int(
            json_int(json_key(json_parse(read_checkpoint(path).meta.train), "epoch"), "epoch"));
    } catch (const std::exception&) {
        return -1;
    }
}
int optimizer_epoch(const std::string& path) {
    if (!fs::exists(path)) return -1;
    try {
        StFile f = safetensors_read(path);
        auto it = f.metadata.find(kStateKey);
        return it == f.metadata.end() ? -1 : parse_run_state(it->second, path).epoch;
    } catch (const std::exception&) {
        return -1;
    }
}

}  // namespace

TrainResult train(const TrainOptions& given, std::ostream& log) {
    // Data-parallel ranks (train/communicator.h): rank 0 alone writes the run folder and prints;
    // every rank trains on its part of each epoch with the gradients averaged over the ranks.
    Communicator& comm = world_communicator(given.device);
    const bool root = comm.rank() == 0;
    std::ostream quiet(nullptr);
    std::ostream& out = root ? log : quiet;
    const std::string dir = given.out_dir;
    const std::string last_path = dir + "/last.safetensors", best_path = dir + "/best.safetensors",
                      opt_path = dir + "/optimizer.safetensors", csv_path = dir + "/metrics.csv",
                      png_path = dir + "/curves.png", config_path = dir + "/config.json";
    // An epoch is committed as one unit: both files are first written as .next, then renamed over
    // the old ones (optimizer first). A kill or a full disk anywhere in between leaves at least
    // one (model, optimizer) pair that holds the same epoch, and --resume picks the newest one.
    const std::string last_next = dir + "/last.next.safetensors",
                      opt_next = dir + "/optimizer.next.safetensors";
    const bool has_run = fs::exists(last_path) || fs::exists(last_next);
    comm.barrier();  // every rank has looked before rank 0 writes anything
    if (!given.resume && has_run)
        throw UsageError(dir +
                         " already holds a run (last.safetensors); pass --resume to continue it "
                         "or choose another --out");
    std::optional<DirectoryLock> lock;
    if (root) {
        create_folders(dir);
        lock.emplace(dir, "gnet train");
        remove_stale_temporaries(dir);
    }
    TrainOptions o = given;
    int resume_epoch = 0;
    std::string resume_model, resume_opt;
    if (given.resume && !root) {
        comm.barrier();  // rank 0 has picked and promoted the pair to resume from
        if (fs::exists(config_path)) o = options_for_resume(given, config_path);
        resume_epoch = checkpoint_epoch(last_path);
        resume_model = last_path;
        resume_opt = opt_path;
    }
    if (given.resume && root) {
        if (fs::exists(config_path)) o = options_for_resume(given, config_path);
        // The newest consistent (model, optimizer) pair.
        const int e_last = checkpoint_epoch(last_path), e_last_next = checkpoint_epoch(last_next);
        const int e_opt = optimizer_epoch(opt_path), e_opt_next = optimizer_epoch(opt_next);
        int best = -1;
        for (const auto& [m, em] :
             {std::pair{last_next, e_last_next}, std::pair{last_path, e_last}})
            for (const auto& [p, ep] :
                 {std::pair{opt_next, e_opt_next}, std::pair{opt_path, e_opt}})
                if (em >= 0 && em == ep && em > best) {
                    best = em;
                    resume_model = m;
                    resume_opt = p;
                }
        if (best < 0)
            throw UsageError("--resume: " + dir +
                             " holds no run to continue (last.safetensors and "
                             "optimizer.safetensors of the same epoch are needed)");
        resume_epoch = best;
        // Promote the pair to the regular names, drop the rest.
        if (resume_opt == opt_next) rename_file(opt_next, opt_path);
        if (resume_model == last_next) rename_file(last_next, last_path);
        resume_model = last_path;
        resume_opt = opt_path;
        std::error_code ec;
        fs::remove(last_next, ec);
        fs::remove(opt_next, ec);
        comm.barrier();
    }
    GNET_CHECK(o.epochs > 0, "--epochs must be positive");
    GNET_CHECK(o.batch > 0, "--batch must be positive");
    GNET_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr must be a positive number");
    GNET_CHECK(o.weight_decay >= 0, "--weight-decay must not be negative");
    GNET_CHECK(o.patience >= 0, "--patience must not be negative");
    GNET_CHECK(o.warmup_epochs >= 0 && std::isfinite(o.warmup_epochs),
               "--warmup-epochs must not be negative");
    GNET_CHECK(o.mixup >= 0 && std::isfinite(o.mixup), "--mixup must not be negative");
    GNET_CHECK(o.ema == 0 || (o.ema > 0 && o.ema < 1), "--ema must be 0 (off) or in (0, 1)");
    GNET_CHECK(o.min_positives >= 1, "--min-positives must be at least 1");
    GNET_CHECK(o.freeze_backbone_epochs >= 0, "--freeze-backbone-epochs must not be negative");
    if (o.freeze_backbone_epochs > 0 && o.init.empty())
        throw UsageError(
            "--freeze-backbone-epochs needs --init CHECKPOINT (a fresh backbone "
            "would stay random)");
    const PreparedData data = load_prepared(o.data_dir);
    const int G = data.num_genres();
    const std::vector<int> train_chunks = data.split_chunks(Split::Train);
    const std::vector<int> val_chunks = data.split_chunks(Split::Val);
    if (train_chunks.empty())
        throw Error(o.data_dir + "/manifest.csv: no chunk in the train split");
    if (val_chunks.empty()) throw Error(o.data_dir + "/manifest.csv: no chunk in the val split");

    ResNet18Config cfg;
    cfg.num_genres = G;
    cfg.max_batch = o.batch;
    cfg.init_seed = o.seed;
    const std::unique_ptr<Network> network = make_network(cfg, o.device);
    Network& model = *network;
    TrainResult result;
    if (!o.init.empty() && !o.resume) {
        result.init_summary = init_from_checkpoint(o.init, data.genres, model).summary();
        out << result.init_summary;
    }
    // With EMA on, the average is validated and saved through an inference-only twin.
    std::optional<WeightAverage> ema;
    std::unique_ptr<Network> ema_network;
    if (o.ema > 0) {
        ema.emplace(o.ema);
        ResNet18Config ec = cfg;
        ec.init_seed = std::nullopt;
        ec.training = false;
        ema_network = make_network(ec, o.device);
    }

    std::vector<float> pos_weight;
    if (o.pos_weight == PosWeightMode::Auto) pos_weight = positive_weights(data, train_chunks);
    Tensor pos_weight_t;
    if (!pos_weight.empty()) pos_weight_t = Tensor::from_vector({G}, pos_weight, Device::CPU);

    // Resume: model, optimizer, run state and the metrics.csv rows up to the resumed epoch.
    RunState state;
    std::vector<std::string> header = metrics_header(data.genres);
    std::string csv_text = csv_line(header);
    if (o.resume) {
        Checkpoint last = read_checkpoint(last_path);
        if (last.meta.genres != data.genres)
            throw Error(last_path + ": genres differ from " + o.data_dir + "/genres.txt");
        load_checkpoint(last, model);
        StFile opt_state = safetensors_read(opt_path);
        // The EMA ("ema.<name>" and "ema.updates") travels in the optimizer file.
        StFile adam_state, ema_state;
        int64_t ema_updates = -1;
        adam_state.metadata = opt_state.metadata;
        for (StTensor& t : opt_state.tensors) {
            if (t.name == "ema.updates" && t.dtype == StDtype::I64 && t.i64.size() == 1) {
                ema_updates = t.i64[0];
            } else if (t.name.rfind("ema.", 0) == 0) {
                t.name = t.name.substr(4);
                ema_state.tensors.push_back(std::move(t));
            } else {
                adam_state.tensors.push_back(std::move(t));
            }
        }
        model.load_optimizer_state(adam_state, opt_path);
        if (ema) {
            if (ema_updates < 0)
                throw Error(opt_path + ": no EMA of the weights in this run's optimizer state");
            if (ema_updates > 0) {
                // Check it against the model's layout before keeping it.
                ema_network->load_state_dict(ema_state, opt_path);
                ema->restore(std::move(ema_state), ema_updates);
            }
        }
        auto it = opt_state.metadata.find(kStateKey);
        if (it == opt_state.metadata.end())
            throw Error(opt_path + ": no " + kStateKey + " metadata (not written by gnet train)");
        state = parse_run_state(it->second, opt_path);
        GNET_CHECK(state.epoch == resume_epoch, dir + ": the resumed pair changed while reading");
        if (fs::exists(csv_path)) {
            std::vector<CsvRecord> rows = csv_read_file(csv_path);
            if (rows.empty() || rows[0].fields != header)
                throw Error(csv_path + ":1: header differs from this run's genres");
            for (size_t r = 1; r < rows.size(); ++r)
                if (!rows[r].fields.empty() && std::atoi(rows[r].fields[0].c_str()) <= state.epoch)
                    csv_text += csv_line(rows[r].fields);
        }
        out << "resuming " << dir << " after epoch " << state.epoch << " (best epoch "
            << state.best_epoch << ", selection score (" << selection_name(o.select) << ") "
            << fmt("%.4f", state.best_score) << ")\n";
        if (state.epoch >= o.epochs) {
            out << "nothing to do: " << state.epoch << " of " << o.epochs << " epochs done\n";
            TrainResult r;
            r.history = state.history;
            r.best_epoch = state.best_epoch;
            r.best_score = state.best_score;
            return r;
        }
    }
    if (root) write_file_atomic(dir + "/config.json", json_dump(options_json(o, data), 2) + "\n");

    std::unique_ptr<GradientReducer> reducer;
    if (comm.size() > 1) {
        reducer = std::make_unique<GradientReducer>(comm, model);
        out << "data-parallel: " << comm.size() << " ranks (" << comm.name() << "), batch "
            << o.batch << " per rank = " << int64_t(o.batch) * comm.size() << " per step, "
            << reducer->buckets().size() << " gradient buckets\n";
    }

    LoaderOptions lo;
    lo.batch = o.batch;
    lo.seed = o.seed;
    lo.workers = o.workers;
    lo.pinned = o.device == Device::CUDA;
    lo.spec_augment = o.spec_augment;
    lo.windows = resolve_window_mode(o.windows, data);
    if (root && o.windows == WindowMode::Auto && lo.windows == WindowMode::Fixed)
        out << "training on the fixed 10 s chunks: " << data.dir
            << " holds one .npy per chunk, and random windows need shards (gnet prepare "
               "--layout shards)\n";
    lo.shuffle_buffer = o.shuffle_buffer;
    lo.rank = comm.rank();
    lo.ranks = comm.size();
    if (o.balanced) lo.sample_weights = balanced_sample_weights(data, train_chunks);
    Loader loader(data, train_chunks, lo);
    const int64_t steps_per_epoch = loader.batches_per_epoch();
    const int64_t total_steps = steps_per_epoch * o.epochs;
    const int64_t warmup_steps = int64_t(std::llround(double(o.warmup_epochs) * steps_per_epoch));
    std::vector<float> mix_x, mix_y;
    if (o.mixup > 0) {
        mix_x.resize(size_t(o.batch) * kChunkFloats);
        mix_y.resize(size_t(o.batch) * size_t(G));
    }

    AdamParams adam;
    adam.weight_decay = o.weight_decay;
    adam.mode = o.optimizer;

    for (int epoch = state.epoch + 1; epoch <= o.epochs; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        loader.start_epoch(epoch);
        const bool frozen = epoch <= o.freeze_backbone_epochs;
        if (o.freeze_backbone_epochs > 0) model.set_backbone_frozen(frozen);
        std::vector<float> train_probs, train_targets;
        train_probs.reserve(size_t(loader.size()) * G);
        train_targets.reserve(size_t(loader.size()) * G);
        double loss_sum = 0;
        int seen = 0;
        float lr = o.lr;
        // Steps are pipelined: a batch's step is begun before the previous one is finished, so
        // a GPU model copies it in while the previous step computes (Network::begin_train_step).
        // The EMA reads the weights after every step, so with it on each step finishes at once.
        struct Pending {
            int index = 0, n = 0;
            std::vector<float> targets;
        };
        std::deque<Pending> pending;
        std::vector<float> z;
        auto finish_oldest = [&] {
            const Pending p = std::move(pending.front());
            pending.pop_front();
            const float loss = model.finish_train_step(&z);
            if (ema) ema->update(model.state_dict());
            check_finite_loss(loss, epoch, p.index + 1, int(steps_per_epoch),
                              state.epoch > 0
                                  ? last_path + " keeps epoch " + std::to_string(state.epoch)
                                  : std::string());
            const size_t at = train_probs.size();
            train_probs.resize(at + z.size());
            cpu::sigmoid_forward(int64_t(z.size()), z.data(), &train_probs[at]);
            train_targets.insert(train_targets.end(), p.targets.begin(), p.targets.end());
            loss_sum += double(loss) * p.n;
            seen += p.n;
            if (o.progress && root) {
                double el = seconds_since(t0);
                progress_line("epoch " + std::to_string(epoch) + "/" + std::to_string(o.epochs),
                              seen, loader.size(), seen / std::max(el, 1e-9), loss_sum / seen,
                              el / seen * (loader.size() - seen));
            }
        };
        while (const Batch* b = loader.next()) {
            if (interrupt_requested()) {
                if (o.progress) clear_progress();
                throw Interrupted(
                    "training interrupted in epoch " + std::to_string(epoch) + " at step " +
                    std::to_string(b->index + 1) + " of " + std::to_string(steps_per_epoch) + "; " +
                    (state.epoch > 0
                         ? dir + " holds epoch " + std::to_string(state.epoch) +
                               "; continue with: gnet train --data " + o.data_dir + " --out " +
                               dir + " --epochs " + std::to_string(o.epochs) + " --resume"
                         : std::string("no epoch was completed; run the same command "
                                       "again to start over")));
            }
            const int64_t step = (epoch - 1) * steps_per_epoch + b->index;
            lr = scheduled_lr(o.schedule, o.lr, step, total_steps, warmup_steps);
            adam.lr = lr;
            const float* x = b->x;
            const float* y = b->y;
            if (o.mixup > 0) {
                const MixupDraw d = draw_mixup(
                    b->n, o.mixup, mix_seed(o.seed, uint64_t(epoch), 0x4d495855ull + b->index));
                mixup_batch(b->n, kChunkFloats, G, b->x, b->y, d, mix_x.data(), mix_y.data());
                x = mix_x.data();
                y = mix_y.data();
            }
            model.begin_train_step(host_view(x, {b->n, 1, kMelBands, kFrames}),
                                   host_view(y, {b->n, G}),
                                   pos_weight.empty() ? nullptr : &pos_weight_t, adam);
            pending.push_back({b->index, b->n, std::vector<float>(b->y, b->y + size_t(b->n) * G)});
            if (pending.size() > 1 || ema) finish_oldest();
        }
        while (!pending.empty())
            finish_oldest();
        if (o.progress && root) clear_progress();
        // The epoch's training loss over every rank's samples; the training F1 is rank 0's.
        double sums[2] = {loss_sum, double(seen)};
        comm.allreduce_sum(sums, 2);
        const double train_seconds = seconds_since(t0);
        const double samples_per_s = sums[1] / std::max(train_seconds, 1e-9);
        if (!root) {
            // Rank 0 validates and commits the epoch; the others wait and follow its decision.
            double stop = 0;
            comm.allreduce_sum(&stop, 1);
            if (stop > 0) break;
            continue;
        }
        MetricsReport train_report =
            compute_metrics(seen, G, train_probs.data(), train_targets.data());
        // The weights that best.safetensors would hold: the EMA when it is on.
        Network* judged = &model;
        if (ema && ema->updates() > 0) {
            ema_network->load_state_dict(ema->state(), "the EMA of the weights");
            judged = ema_network.get();
        }
        SplitEvaluation val =
            evaluate_split(*judged, data, val_chunks, o.batch, {}, pos_weight, o.workers);

        EpochRecord rec;
        rec.epoch = epoch;
        rec.lr = lr;
        rec.train_loss = sums[0] / sums[1];
        rec.train_macro_f1 = train_report.macro_f1;
        rec.val_loss = val.loss;
        rec.val_f1 = val.track_mean_report.macro_f1;
        rec.val_map = val.track_mean_report.macro_ap.value_or(0.0);
        rec.score = o.select == Selection::Map    ? rec.val_map
                    : o.select == Selection::Loss ? -rec.val_loss
                                                  : rec.val_f1;
        rec.seconds = seconds_since(t0);
        if (!std::isfinite(rec.val_loss))
            throw Error("training diverged: the validation loss is not finite after epoch " +
                        std::to_string(epoch) + "; try a lower --lr");

        const int T = int(val.track_mean.size()) / G;
        const ThresholdChoice choice = choose_thresholds(
            T, G, val.track_mean.data(), val.track_targets.data(), o.thresholds, o.min_positives);
        const std::vector<float>& thresholds = choice.thresholds;
        std::optional<double> tuned_f1;
        if (o.thresholds != ThresholdPolicy::Fixed)
            tuned_f1 =
                compute_metrics(T, G, val.track_mean.data(), val.track_targets.data(), thresholds)
                    .macro_f1;
        const bool improved = state.best_epoch == 0 || rec.score > state.best_score;
        state.epoch = epoch;
        state.history.push_back(rec);
        if (improved) {
            result.threshold_summary = describe_thresholds(choice, data.genres, o.thresholds);
            state.best_score = rec.score;
            state.best_epoch = epoch;
            state.bad_epochs = 0;
        } else {
            ++state.bad_epochs;
        }

        // Files: checkpoints first, then the optimizer with the run state (resume reads both and
        // checks that their epochs agree), then the reports.
        CheckpointMeta meta;
        meta.genres = data.genres;
        meta.thresholds = thresholds;
        OrderedJson prov = options_json(o, data);
        prov["epoch"] = epoch;
        prov["val_track_mean_macro_f1"] = rec.val_f1;
        prov["val_track_mean_map"] = rec.val_map;
        prov["weights"] = judged == &model ? "raw" : "ema";
        meta.train = json_dump(prov);
        write_checkpoint(last_next, model, meta);
        StFile opt_state = model.optimizer_state();
        if (ema) {
            for (const StTensor& t : ema->state().tensors) {
                StTensor c = t;
                c.name = "ema." + t.name;
                opt_state.tensors.push_back(std::move(c));
            }
            opt_state.tensors.push_back({"ema.updates", StDtype::I64, {}, {}, {ema->updates()}});
        }
        opt_state.metadata[kStateKey] = json_dump(run_state_json(state));
        safetensors_write(opt_next, opt_state);
        rename_file(opt_next, opt_path);
        rename_file(last_next, last_path);
        if (improved) write_checkpoint(best_path, *judged, meta);
        csv_text += csv_line(metrics_row(rec, samples_per_s, train_report, val, tuned_f1));
        write_file_atomic(csv_path, csv_text);
        write_curves_png(png_path, state.history);

        auto f = [](double v) { return fmt("%.4f", v); };
        auto fo = [](const std::optional<double>& v) {
            return v ? fmt("%.4f", *v) : std::string("n/a");
        };
        out << "epoch " << epoch << "/" << o.epochs << (frozen ? " (backbone frozen)" : "")
            << "  lr " << fmt("%.2e", lr) << "  train loss " << f(rec.train_loss) << " F1 "
            << f(rec.train_macro_f1) << "  val loss " << f(rec.val_loss) << "  chunk F1 "
            << f(val.chunk.macro_f1) << " mAP " << fo(val.chunk.macro_ap) << "  track mean F1 "
            << f(rec.val_f1) << " mAP " << fo(val.track_mean_report.macro_ap) << " AUC "
            << fo(val.track_mean_report.macro_roc_auc) << "  track max F1 "
            << f(val.track_max_report.macro_f1);
        if (tuned_f1) out << "  tuned F1 " << f(*tuned_f1);
        out << "  " << fmt("%.1f", rec.seconds) << " s (" << fmt("%.1f", samples_per_s)
            << " samples/s)" << (improved ? "  *best" : "") << "\n";
        out.flush();

        const bool stop = o.patience > 0 && state.bad_epochs >= o.patience && epoch < o.epochs;
        double stop_flag = stop ? 1 : 0;
        comm.allreduce_sum(&stop_flag, 1);  // the other ranks wait here for the epoch's commit
        if (stop) {
            out << "early stop: no improvement of the selection score (" << selection_name(o.select)
                << ") for " << o.patience << " epochs (best " << f(state.best_score) << " at epoch "
                << state.best_epoch << ")\n";
            result.stopped_early = true;
            break;
        }
    }
    result.history = state.history;
    result.best_epoch = state.best_epoch;
    result.best_score = state.best_score;
    result.rank = comm.rank();
    result.ranks = comm.size();
    return result;
}

}  // namespace gnet
