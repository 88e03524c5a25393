// The device paths of the commands, end to end on tiny synthetic data: prepare, train, evaluate and
// predict with --device cuda agree with --device cpu (float32 on both), and the bf16 path (the
// GPU default) trains and predicts close to them. The binary is the CLI built against the
// library under test (on the emulated device: gnet-emu, a test build; on a GPU machine: gnet).
//
// Expected agreement: spectrograms to the GPU spectrogram test's tolerance; the first training
// step's loss to float rounding; the epoch's losses loosely (after an Adam step the twins' weights
// may differ where a gradient's sign flipped at a ReLU kink, so later losses drift apart a little);
// evaluate and predict on the same checkpoint to float rounding.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "audio/npy.h"
#include "tests/check.h"
#include "tests/helpers.h"
#include "train/csv.h"

using gnet::test::run_gnet;
using gnet::test::TempDir;
using gnet::test::Tolerance;

namespace {

constexpr Tolerance kSpectrogram{1e-4, 0};   // as the GPU spectrogram test
constexpr double kEpochLossRel = 2e-2;       // the epoch's mean training loss
constexpr double kValLossRel = 2e-2;         // validation loss after the epoch
constexpr Tolerance kSameModel{2e-5, 1e-4};  // probabilities and metrics of one checkpoint

std::string q(const std::string& s) {
    return "'" + s + "'";
}

void run_ok(const std::string& args) {
    const auto r = run_gnet(args);
    INFO(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
}

// Every number in a text (metrics tables), in order.
std::vector<double> numbers_in(const std::string& text) {
    std::vector<double> out;
    const char* p = text.c_str();
    while (*p) {
        char* end = nullptr;
        if ((*p >= '0' && *p <= '9') || ((*p == '-' || *p == '.') && p[1] >= '0' && p[1] <= '9')) {
            out.push_back(std::strtod(p, &end));
            p = end;
        } else {
            ++p;
        }
    }
    return out;
}

std::map<std::string, std::string> csv_row(const std::string& path, size_t row) {
    const auto records = gnet::csv_read_file(path);
    REQUIRE(records.size() > row);
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < records[0].fields.size(); ++i)
        m[records[0].fields[i]] = records[row].fields.at(i);
    return m;
}

}  // namespace

TEST_CASE("prepare, train, evaluate and predict on the GPU agree with the CPU" *
          doctest::test_suite("model")) {
    TempDir dir;
    const std::string music = dir.file("music");
    run_ok("demo-data " + q(music) + " --tracks-per-genre 2 --two-label 0 --seconds 11 --seed 3");

    // prepare: the same split and manifest, spectrograms within the spectrogram tolerance.
    for (const char* d : {"cpu", "cuda"})
        run_ok("prepare " + q(music) + " --labels " + q(music + "/labels.csv") + " --out " +
               q(dir.file(std::string("data-") + d)) + " --seed 0 --device " + d);
    const std::string manifest_cpu = gnet::test::read_text(dir.file("data-cpu/manifest.csv"));
    CHECK(manifest_cpu == gnet::test::read_text(dir.file("data-cuda/manifest.csv")));
    const auto rows = gnet::csv_parse(manifest_cpu, "manifest.csv");
    REQUIRE(rows.size() >= 5);
    for (size_t i = 1; i < rows.size(); ++i) {
        const std::string& file = rows[i].fields.at(0);
        CAPTURE(file);
        const gnet::NpyArray a = gnet::npy_read(dir.file("data-cpu/" + file));
        const gnet::NpyArray b = gnet::npy_read(dir.file("data-cuda/" + file));
        GNET_CHECK_CLOSE(b.f32, a.f32, kSpectrogram);
    }

    // train: one epoch, batch 2, from the same seed on each device.
    for (const char* d : {"cpu", "cuda"})
        run_ok("train --data " + q(dir.file("data-cpu")) + " --out " +
               q(dir.file(std::string("run-") + d)) +
               " --epochs 1 --batch 2 --seed 0 --workers 1 --precision fp32 --device " + d);
    const auto mc = csv_row(dir.file("run-cpu/metrics.csv"), 1);
    const auto mg = csv_row(dir.file("run-cuda/metrics.csv"), 1);
    for (const auto& [column, rel] :
         {std::pair<const char*, double>{"train_loss", kEpochLossRel}, {"val_loss", kValLossRel}}) {
        CAPTURE(column);
        const double c = std::stod(mc.at(column)), g = std::stod(mg.at(column));
        CAPTURE(c);
        CAPTURE(g);
        CHECK(std::isfinite(g));
        CHECK(std::fabs(g - c) <= rel * std::fabs(c));
    }

    // evaluate and predict: one checkpoint (the CPU run's) on each device.
    const std::string model = dir.file("run-cpu/best.safetensors");
    std::vector<double> metrics[2], probs[2];
    int k = 0;
    for (const char* d : {"cpu", "cuda"}) {
        const auto e = run_gnet("evaluate --data " + q(dir.file("data-cpu")) + " --model " +
                                q(model) + " --precision fp32 --device " + d);
        INFO(e.err);
        REQUIRE(e.exit_code == 0);
        const size_t table = e.out.find("chunk level");  // the numbers after the header line
        REQUIRE(table != std::string::npos);
        metrics[k] = numbers_in(e.out.substr(table));
        const auto p =
            run_gnet("predict " + q(music) + " --model " + q(model) +
                     " --format csv --segments --precision fp32 --device " + std::string(d));
        INFO(p.err);
        REQUIRE(p.exit_code == 0);
        for (const auto& rec : gnet::csv_parse(p.out, "predict output")) {
            if (rec.line == 1) continue;
            for (size_t c = 6; c < rec.fields.size(); ++c)
                probs[k].push_back(std::stod(rec.fields[c]));
        }
        ++k;
    }
    REQUIRE(metrics[0].size() > 20);
    GNET_CHECK_CLOSE(metrics[1], metrics[0], kSameModel);
    REQUIRE(probs[0].size() >= 8 * 4);
    GNET_CHECK_CLOSE(probs[1], probs[0], kSameModel);

    // bf16 (the default on a GPU with tensor cores): training runs and lands near the float32
    // run; predict on the GPU agrees with the bf16 CPU twins, and loosely with float32.
    run_ok("train --data " + q(dir.file("data-cpu")) + " --out " + q(dir.file("run-bf16")) +
           " --epochs 1 --batch 2 --seed 0 --workers 1 --device cuda");
    const auto mb = csv_row(dir.file("run-bf16/metrics.csv"), 1);
    for (const char* column : {"train_loss", "val_loss"}) {
        CAPTURE(column);
        const double c = std::stod(mc.at(column)), b = std::stod(mb.at(column));
        CAPTURE(b);
        CHECK(std::isfinite(b));
        CHECK(std::fabs(b - c) <= 0.25 * std::fabs(c));
    }
    std::vector<double> bf16_probs[2];
    k = 0;
    for (const char* d : {"cpu", "cuda"}) {
        const auto p =
            run_gnet("predict " + q(music) + " --model " + q(model) +
                     " --format csv --segments --precision bf16 --device " + std::string(d));
        INFO(p.err);
        REQUIRE(p.exit_code == 0);
        for (const auto& rec : gnet::csv_parse(p.out, "predict output")) {
            if (rec.line == 1) continue;
            for (size_t c = 6; c < rec.fields.size(); ++c)
                bf16_probs[k].push_back(std::stod(rec.fields[c]));
        }
        ++k;
    }
    GNET_CHECK_CLOSE(bf16_probs[1], bf16_probs[0], (Tolerance{1e-2, 2e-2}));
    GNET_CHECK_CLOSE(bf16_probs[1], probs[0], (Tolerance{5e-2, 5e-2}));
}
