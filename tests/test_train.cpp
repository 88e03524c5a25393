// Trainer and the train / evaluate commands on a tiny synthetic prepared folder (CPU, full-size
// 128 x 431 inputs, batch 2, one step per epoch): the loss decreases, a resumed run equals an
// uninterrupted one bit for bit, bad inputs are clear errors, evaluate prints the table.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "audio/npy.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/device.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "train/csv.h"
#include "train/synthetic_data.h"
#include "train/trainer.h"

using namespace gnet;
using gnet::test::TempDir;

namespace {

// 2 train chunks (one step of batch 2 per epoch) and 2 val tracks of 1 chunk.
void make_data(const std::string& dir) {
    SyntheticDataOptions o;
    o.genres = {"rock", "jazz"};
    o.train_tracks = 2;
    o.val_tracks = 2;
    o.chunks_per_track = 1;
    write_synthetic_prepared(dir, o);
}

TrainOptions tiny_options(const std::string& data, const std::string& out, int epochs) {
    TrainOptions o;
    o.data_dir = data;
    o.out_dir = out;
    o.epochs = epochs;
    o.batch = 2;
    o.lr = 1e-3f;
    o.seed = 3;
    o.device = Device::CPU;
    o.spec_augment = true;  // exercised by the resume check too: it must be a function of the epoch
    o.pos_weight = PosWeightMode::Auto;
    o.thresholds = ThresholdPolicy::PerGenre;
    o.mixup = 0.4f;  // mixup, balanced sampling and the EMA must resume exactly too
    o.balanced = true;
    o.ema = 0.9f;
    return o;
}

std::vector<std::string> column(const std::string& csv_path, const std::string& name) {
    std::vector<CsvRecord> rows = csv_read_file(csv_path);
    REQUIRE(!rows.empty());
    size_t col = 0;
    while (col < rows[0].fields.size() && rows[0].fields[col] != name)
        ++col;
    REQUIRE(col < rows[0].fields.size());
    std::vector<std::string> out;
    for (size_t r = 1; r < rows.size(); ++r)
        out.push_back(rows[r].fields[col]);
    return out;
}

}  // namespace

TEST_CASE("train: learning rate schedules") {
    CHECK(scheduled_lr(Schedule::Constant, 0.1f, 5, 10) == 0.1f);
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 0, 10) == 0.1f);
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 5, 10) == doctest::Approx(0.05f));
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 10, 10) == doctest::Approx(0.0f));
}

TEST_CASE(
    "train: loss decreases; resume (CLI) equals the uninterrupted run; evaluate prints the table") {
    TempDir tmp;
    const std::string data = tmp.file("data");
    make_data(data);

    // Uninterrupted: 3 epochs through the library.
    std::ostringstream log;
    TrainResult a = train(tiny_options(data, tmp.file("a"), 3), log);
    INFO(log.str());
    REQUIRE(a.history.size() == 3);
    for (const EpochRecord& e : a.history)
        CHECK(std::isfinite(e.train_loss));
    CHECK(a.history[2].train_loss < a.history[0].train_loss);
    CHECK(a.best_epoch >= 1);
    CHECK(log.str().find("epoch 3/3") != std::string::npos);
    for (const char* f : {"best.safetensors", "last.safetensors", "optimizer.safetensors",
                          "metrics.csv", "config.json", "curves.png"})
        CHECK(test::path_exists(tmp.file("a") + "/" + f));
    CHECK(test::read_text(tmp.file("a/curves.png")).compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
    CHECK(column(tmp.file("a/metrics.csv"), "epoch") == std::vector<std::string>{"1", "2", "3"});
    Checkpoint best = read_checkpoint(tmp.file("a/best.safetensors"));
    CHECK(best.meta.genres == std::vector<std::string>{"rock", "jazz"});
    CHECK(best.meta.thresholds.size() == 2);

    // Interrupted: 1 epoch, then --resume to 3, through the CLI, same options.
    const std::string common = "--data '" + data + "' --out '" + tmp.file("b") +
                               "' --batch 2 --lr 1e-3 --seed 3 --device cpu --spec-augment "
                               "--pos-weight auto --tune-thresholds --mixup 0.4 --balanced "
                               "--ema 0.9";
    test::RunResult r1 = test::run_gnet("train " + common + " --epochs 1");
    INFO(r1.out, r1.err);
    REQUIRE(r1.exit_code == 0);
    // The run ends with the per-genre table of its best checkpoint on validation.
    CHECK(r1.out.find("track level, mean of chunk probabilities") != std::string::npos);
    CHECK(r1.out.find("support precision") != std::string::npos);
    test::RunResult again = test::run_gnet("train " + common + " --epochs 2");
    CHECK(again.exit_code != 0);
    CHECK(again.err.find("--resume") != std::string::npos);
    test::RunResult r2 = test::run_gnet("train " + common + " --epochs 3 --resume");
    INFO(r2.out, r2.err);
    REQUIRE(r2.exit_code == 0);
    CHECK(r2.out.find("resuming") != std::string::npos);

    for (const char* col : {"train_loss", "val_loss", "val_track_mean_macro_f1", "val_chunk_map"})
        CHECK(column(tmp.file("b/metrics.csv"), col) == column(tmp.file("a/metrics.csv"), col));
    StFile wa = safetensors_read(tmp.file("a/last.safetensors"));
    StFile wb = safetensors_read(tmp.file("b/last.safetensors"));
    REQUIRE(wa.tensors.size() == wb.tensors.size());
    size_t differing = 0;
    for (size_t i = 0; i < wa.tensors.size(); ++i)
        differing +=
            wa.tensors[i].f32 != wb.tensors[i].f32 || wa.tensors[i].i64 != wb.tensors[i].i64;
    CHECK(differing == 0);  // bit for bit
    StFile oa = safetensors_read(tmp.file("a/optimizer.safetensors"));
    StFile ob = safetensors_read(tmp.file("b/optimizer.safetensors"));
    for (size_t i = 0; i < oa.tensors.size(); ++i)
        CHECK(oa.tensors[i].f32 == ob.tensors[i].f32);

    test::RunResult done = test::run_gnet("train " + common + " --epochs 3 --resume");
    CHECK(done.exit_code == 0);
    CHECK(done.out.find("nothing to do") != std::string::npos);

    test::RunResult ev = test::run_gnet("evaluate --data '" + data + "' --model '" +
                                        tmp.file("a/best.safetensors") + "' --device cpu");
    INFO(ev.out, ev.err);
    REQUIRE(ev.exit_code == 0);
    CHECK(ev.out.find("track level, mean") != std::string::npos);
    CHECK(ev.out.find("support precision") != std::string::npos);
    CHECK(ev.out.find("\nrock ") != std::string::npos);
    CHECK(ev.out.find("\njazz ") != std::string::npos);
    CHECK(ev.out.find("macro avg") != std::string::npos);
}

TEST_CASE("train: bad inputs and divergence are clear errors") {
    TempDir tmp;
    const std::string data = tmp.file("data");
    make_data(data);
    std::ostringstream log;

    CHECK_THROWS_WITH_AS(train(tiny_options(tmp.file("nowhere"), tmp.file("x"), 1), log),
                         doctest::Contains("genres.txt"), Error);
    TrainOptions resume = tiny_options(data, tmp.file("empty_run"), 1);
    resume.resume = true;
    CHECK_THROWS_WITH_AS(train(resume, log), doctest::Contains("no run to continue"), UsageError);

    // A NaN in an input spectrogram: an error naming the chunk, no checkpoint written.
    std::vector<float> x(kChunkFloats, 0.5f);
    x[431 * 2 + 7] = std::nanf("");
    npy_write(data + "/train/000000.npy", x.data(), {kMelBands, kFrames});
    CHECK_THROWS_WITH_AS(train(tiny_options(data, tmp.file("nan"), 2), log),
                         doctest::Contains("train/000000.npy: value nan at [2, 7] is not finite"),
                         Error);
    CHECK_FALSE(test::path_exists(tmp.file("nan/last.safetensors")));

    // The divergence guard names the step and the checkpoint kept.
    CHECK_NOTHROW(check_finite_loss(0.7f, 3, 5, 10, ""));
    CHECK_THROWS_WITH_AS(
        check_finite_loss(std::nanf(""), 3, 5, 10, "run/last.safetensors keeps epoch 2"),
        doctest::Contains("loss is NaN at epoch 3, step 5 of 10 (global step 25); "
                          "run/last.safetensors keeps epoch 2"),
        Error);
    CHECK_THROWS_WITH_AS(
        check_finite_loss(INFINITY, 1, 1, 4, ""),
        doctest::Contains("infinite at epoch 1, step 1 of 4 (global step 1); no checkpoint"),
        Error);

    // A wrong-shape chunk names its file.
    std::vector<float> small(64 * 431, 0.f);
    npy_write(data + "/train/000000.npy", small.data(), {64, 431});
    CHECK_THROWS_WITH_AS(train(tiny_options(data, tmp.file("shape"), 1), log),
                         doctest::Contains("train/000000.npy"), Error);

    test::RunResult ev = test::run_gnet("evaluate --data '" + data + "' --model '" +
                                        tmp.file("missing.safetensors") + "' --device cpu");
    CHECK(ev.exit_code != 0);
    CHECK(ev.err.find("missing.safetensors") != std::string::npos);
}

TEST_CASE("train: a CUDA run follows the CPU run (skipped without a usable GPU)") {
    if (!probe_gpus().usable) {
        MESSAGE("no usable GPU: " << probe_gpus().reason);
        return;
    }
    TempDir tmp;
    const std::string data = tmp.file("data");
    make_data(data);
    std::ostringstream log;
    TrainOptions cpu = tiny_options(data, tmp.file("cpu"), 2);
    TrainOptions gpu = tiny_options(data, tmp.file("gpu"), 2);
    gpu.device = Device::CUDA;  // pinned loader slots, GPU kernels
    TrainResult rc = train(cpu, log);
    TrainResult rg = train(gpu, log);
    INFO(log.str());
    REQUIRE(rg.history.size() == 2);
    // Float summation orders differ between the twins; two Adam steps keep them close.
    constexpr double kLossRtol = 2e-3;
    for (size_t e = 0; e < 2; ++e) {
        CHECK(rg.history[e].train_loss ==
              doctest::Approx(rc.history[e].train_loss).epsilon(kLossRtol));
        CHECK(rg.history[e].val_loss == doctest::Approx(rc.history[e].val_loss).epsilon(kLossRtol));
    }
    // The CUDA run's checkpoint loads and evaluates on the CPU.
    test::RunResult ev = test::run_gnet("evaluate --data '" + data + "' --model '" +
                                        tmp.file("gpu/best.safetensors") + "' --device cpu");
    CHECK(ev.exit_code == 0);
}
