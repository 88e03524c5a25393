// The training recipe's pieces against hand-computed values: warm-up + cosine schedule, mixup,
// the EMA of the weights, balanced sampling, the threshold policy; transfer learning (--init with
// the same, reordered and different genre sets, an RGB torchvision stem); the frozen backbone; the
// pooled features. Small models (32 x 64 inputs), under a few seconds in all.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/resnet18.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/mixup.h"
#include "train/synthetic_data.h"
#include "train/thresholds.h"
#include "train/trainer.h"
#include "train/transfer.h"
#include "train/weight_average.h"

using namespace gnet;
using gnet::test::TempDir;

namespace {

ResNet18Config small_config(int G, int N = 2) {
    ResNet18Config c;
    c.num_genres = G;
    c.max_batch = N;
    c.height = 32;
    c.width = 64;
    c.init_seed = 7;
    return c;
}

const StTensor& tensor(const StFile& f, const std::string& name) {
    const StTensor* t = f.find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    return *t;
}

std::string save(const TempDir& dir, const std::string& name, const ResNet18& model,
                 const std::vector<std::string>& genres) {
    CheckpointMeta meta;
    meta.genres = genres;
    const std::string path = dir.file(name);
    write_checkpoint(path, model, meta);
    return path;
}

}  // namespace

TEST_CASE("recipe: linear warm-up, then cosine over the remaining steps") {
    // 10 steps, 4 of warm-up: lr * (s + 1) / 4, then cosine over steps 4..10.
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 0, 10, 4) == doctest::Approx(0.025f));
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 3, 10, 4) == doctest::Approx(0.1f));
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 4, 10, 4) == doctest::Approx(0.1f));
    CHECK(scheduled_lr(Schedule::Cosine, 0.1f, 7, 10, 4) == doctest::Approx(0.05f));
    CHECK(scheduled_lr(Schedule::Constant, 0.1f, 1, 10, 4) == doctest::Approx(0.05f));
    CHECK(scheduled_lr(Schedule::Constant, 0.1f, 8, 10, 4) == 0.1f);
}

TEST_CASE("recipe: mixup blends inputs and targets with lambda and the partner") {
    // Two samples of 3 values, 2 genres; lambda 0.75, partners swapped.
    const std::vector<float> x = {1, 2, 3, 10, 20, 30};
    const std::vector<float> y = {1, 0, 0, 1};
    MixupDraw d;
    d.lambda = 0.75f;
    d.partner = {1, 0};
    std::vector<float> xo(6), yo(4);
    mixup_batch(2, 3, 2, x.data(), y.data(), d, xo.data(), yo.data());
    const std::vector<float> want_x = {3.25f, 6.5f, 9.75f, 7.75f, 15.5f, 23.25f};
    const std::vector<float> want_y = {0.75f, 0.25f, 0.25f, 0.75f};
    for (size_t i = 0; i < 6; ++i)
        CHECK(xo[i] == doctest::Approx(want_x[i]));
    for (size_t i = 0; i < 4; ++i)
        CHECK(yo[i] == doctest::Approx(want_y[i]));

    // Draws: lambda folded into [0.5, 1], partners a permutation, a pure function of the seed.
    for (uint64_t seed = 0; seed < 20; ++seed) {
        MixupDraw a = draw_mixup(5, 0.4f, seed), b = draw_mixup(5, 0.4f, seed);
        CHECK(a.lambda >= 0.5f);
        CHECK(a.lambda <= 1.0f);
        CHECK(a.lambda == b.lambda);
        CHECK(a.partner == b.partner);
        std::vector<int> sorted = a.partner;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == std::vector<int>{0, 1, 2, 3, 4});
    }
    CHECK_THROWS_AS(draw_mixup(3, 0.f, 1), Error);
}

TEST_CASE("recipe: EMA of the weights against hand-computed values") {
    WeightAverage ema(0.5f);
    // d_t = min(0.5, (1 + t) / (10 + t)): 0.1, 0.1818..., ..., capped at 0.5 from t = 8.
    CHECK(ema.decay_at(0) == doctest::Approx(0.1));
    CHECK(ema.decay_at(1) == doctest::Approx(2.0 / 11.0));
    CHECK(ema.decay_at(8) == doctest::Approx(0.5));
    CHECK(ema.decay_at(100) == doctest::Approx(0.5));
    auto state = [](float w, int64_t n) {
        StFile f;
        f.tensors.push_back({"w", StDtype::F32, {2}, {w, -w}, {}});
        f.tensors.push_back({"n", StDtype::I64, {}, {}, {n}});
        return f;
    };
    ema.update(state(1.f, 1));  // copies
    CHECK(ema.state().tensors[0].f32 == std::vector<float>{1.f, -1.f});
    ema.update(state(3.f, 2));  // d_1 = 2/11: 2/11 * 1 + 9/11 * 3
    const double w2 = 2.0 / 11.0 * 1.0 + 9.0 / 11.0 * 3.0;
    CHECK(ema.state().tensors[0].f32[0] == doctest::Approx(w2));
    CHECK(ema.state().tensors[0].f32[1] == doctest::Approx(-w2));
    CHECK(ema.state().tensors[1].i64 == std::vector<int64_t>{2});  // counters are copied
    ema.update(state(0.f, 3));                                     // d_2 = 3/12
    CHECK(ema.state().tensors[0].f32[0] == doctest::Approx(0.25 * w2));
    CHECK(ema.updates() == 3);
    StFile other;
    other.tensors.push_back({"v", StDtype::F32, {2}, {0, 0}, {}});
    other.tensors.push_back({"n", StDtype::I64, {}, {}, {0}});
    CHECK_THROWS_AS(ema.update(other), Error);
    CHECK_THROWS_AS(WeightAverage(1.f), Error);
}

TEST_CASE("recipe: balanced sampling draws rare genres as often as common ones") {
    TempDir tmp;
    // 6 training tracks of one chunk: 5 rock, 1 jazz (synthetic labels are rewritten below).
    SyntheticDataOptions so;
    so.genres = {"rock", "jazz"};
    so.train_tracks = 6;
    so.val_tracks = 2;
    so.chunks_per_track = 1;
    write_synthetic_prepared(tmp.file("d"), so);
    PreparedData data = load_prepared(tmp.file("d"));
    std::vector<int> train = data.split_chunks(Split::Train);
    REQUIRE(train.size() == 6);
    for (size_t i = 0; i < train.size(); ++i) {
        data.targets[size_t(train[i]) * 2 + 0] = i < 5 ? 1.f : 0.f;
        data.targets[size_t(train[i]) * 2 + 1] = i < 5 ? 0.f : 1.f;
    }
    std::vector<double> w = balanced_sample_weights(data, train);
    for (size_t i = 0; i < 5; ++i)
        CHECK(w[i] == doctest::Approx(0.2));
    CHECK(w[5] == doctest::Approx(1.0));
    // Draws: jazz (index 5) about half of the time; a pure function of (seed, epoch).
    int jazz = 0, n = 0;
    for (int epoch = 1; epoch <= 400; ++epoch)
        for (int i : weighted_order(w, 3, epoch)) {
            jazz += i == 5;
            ++n;
        }
    CHECK(double(jazz) / n == doctest::Approx(0.5).epsilon(0.05));
    CHECK(weighted_order(w, 3, 7) == weighted_order(w, 3, 7));
    CHECK(weighted_order(w, 3, 7) != weighted_order(w, 3, 8));
    CHECK_THROWS_AS(weighted_order({0.0, 0.0}, 1, 1), Error);

    // The loader's batches are those draws, with repeats, in both layouts.
    for (const DataLayout layout : {DataLayout::ChunkFiles, DataLayout::Shards}) {
        CAPTURE(int(layout));
        SyntheticDataOptions lo = so;
        lo.layout = layout;
        const std::string dir = tmp.file(layout == DataLayout::Shards ? "s" : "c");
        write_synthetic_prepared(dir, lo);
        const PreparedData d = load_prepared(dir);
        const std::vector<int> tr = d.split_chunks(Split::Train);
        LoaderOptions opt;
        opt.batch = 4;
        opt.seed = 3;
        opt.sample_weights = w;
        Loader loader(d, tr, opt);
        bool repeats = false;
        for (int epoch = 1; epoch <= 4; ++epoch) {
            loader.start_epoch(epoch);
            std::vector<int> seen;
            while (const Batch* b = loader.next())
                seen.insert(seen.end(), b->chunks.begin(), b->chunks.end());
            CHECK(seen == loader.epoch_order(epoch));
            std::sort(seen.begin(), seen.end());
            repeats = repeats || std::adjacent_find(seen.begin(), seen.end()) != seen.end();
        }
        CHECK(repeats);  // drawn with replacement, not a permutation
    }
}

TEST_CASE("recipe: thresholds tuned per genre only where validation has enough positives") {
    // 6 tracks, 2 genres: genre 0 has 4 positives (scores separate them at 0.3), genre 1 one.
    const std::vector<float> p = {0.35f, 0.9f, 0.4f, 0.1f,  0.32f, 0.2f,
                                  0.31f, 0.1f, 0.1f, 0.15f, 0.05f, 0.2f};
    const std::vector<float> y = {1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    ThresholdChoice fixed = choose_thresholds(6, 2, p.data(), y.data(), ThresholdPolicy::Fixed, 3);
    CHECK(fixed.thresholds == std::vector<float>{0.5f, 0.5f});
    CHECK(fixed.positives == std::vector<int>{4, 1});
    ThresholdChoice per = choose_thresholds(6, 2, p.data(), y.data(), ThresholdPolicy::PerGenre, 3);
    CHECK(per.tuned == std::vector<bool>{true, true});
    CHECK(per.thresholds[0] == doctest::Approx(0.205f));  // between 0.31 (positive) and 0.1
    ThresholdChoice aut = choose_thresholds(6, 2, p.data(), y.data(), ThresholdPolicy::Auto, 3);
    CHECK(aut.tuned == std::vector<bool>{true, false});
    CHECK(aut.thresholds[0] == per.thresholds[0]);
    CHECK(aut.thresholds[1] == aut.global);  // too few positives: the shared threshold
    // The global one maximises macro F1 on the 0.05 grid: genre 0 is perfect for 0.1 < t <= 0.31,
    // genre 1 for 0.2 < t <= 0.9; of 0.25 and 0.30 the one nearer 0.5 wins.
    CHECK(aut.global == doctest::Approx(0.3f));
    const std::string text = describe_thresholds(aut, {"rock", "world"}, ThresholdPolicy::Auto);
    CHECK(text.find("rock") != std::string::npos);
    CHECK(text.find("tuned (4 positives)") != std::string::npos);
    CHECK(text.find("global (1 positive)") != std::string::npos);
    CHECK(parse_threshold_policy("auto") == ThresholdPolicy::Auto);
    CHECK_THROWS_AS(parse_threshold_policy("best"), UsageError);
}

TEST_CASE("--init: the same, reordered and different genre sets; an RGB torchvision stem") {
    TempDir tmp;
    ResNet18 source(small_config(3), Device::CPU);
    source.init(11);
    const StFile src = source.state_dict();
    const std::string same = save(tmp, "same.safetensors", source, {"rock", "jazz", "pop"});

    SUBCASE("the same genres: every tensor is taken") {
        ResNet18 m(small_config(3), Device::CPU);
        InitReport r = init_from_checkpoint(same, {"rock", "jazz", "pop"}, m);
        CHECK(r.head_kept);
        CHECK(r.reinitialised.empty());
        CHECK(r.loaded == int(src.tensors.size()));
        const StFile got = m.state_dict();
        for (size_t i = 0; i < got.tensors.size(); ++i) {
            CHECK_MESSAGE(got.tensors[i].f32 == src.tensors[i].f32, got.tensors[i].name);
            CHECK(got.tensors[i].i64 == src.tensors[i].i64);
        }
    }
    SUBCASE("the same genres in another order: fc rows follow the names") {
        ResNet18 m(small_config(3), Device::CPU);
        InitReport r = init_from_checkpoint(same, {"pop", "rock", "jazz"}, m);
        CHECK(r.head_kept);
        CHECK(r.head_reason.find("reordered") != std::string::npos);
        const StFile got = m.state_dict();
        const StTensor &w = tensor(got, "fc.weight"), &b = tensor(got, "fc.bias");
        const StTensor &sw = tensor(src, "fc.weight"), &sb = tensor(src, "fc.bias");
        const int row_of[3] = {2, 0, 1};  // pop, rock, jazz in the source
        for (int g = 0; g < 3; ++g) {
            CHECK(b.f32[size_t(g)] == sb.f32[size_t(row_of[g])]);
            for (int k = 0; k < 512; k += 37)
                CHECK(w.f32[size_t(g * 512 + k)] == sw.f32[size_t(row_of[g] * 512 + k)]);
        }
        CHECK(tensor(got, "layer3.1.conv2.weight").f32 == tensor(src, "layer3.1.conv2.weight").f32);
    }
    SUBCASE("another genre set: the head is re-initialised, the backbone taken") {
        ResNet18 fresh(small_config(2), Device::CPU);  // the init a new run would have
        const StFile init = fresh.state_dict();
        ResNet18 m(small_config(2), Device::CPU);
        InitReport r = init_from_checkpoint(same, {"metal", "jazz"}, m);
        CHECK_FALSE(r.head_kept);
        CHECK(r.head_reason.find("new here: metal") != std::string::npos);
        CHECK(r.head_reason.find("only in the checkpoint: rock, pop") != std::string::npos);
        CHECK(r.summary().find("re-initialised: fc.weight") != std::string::npos);
        const StFile got = m.state_dict();
        CHECK(tensor(got, "fc.weight").f32 == tensor(init, "fc.weight").f32);
        CHECK(tensor(got, "fc.bias").f32 == tensor(init, "fc.bias").f32);
        CHECK(tensor(got, "conv1.weight").f32 == tensor(src, "conv1.weight").f32);
        CHECK(tensor(got, "layer4.0.downsample.1.running_var").f32 ==
              tensor(src, "layer4.0.downsample.1.running_var").f32);
    }
    SUBCASE("a torchvision ImageNet-style file: RGB stem summed, 1000-way head dropped") {
        StFile tv = src;
        tv.metadata.clear();
        for (StTensor& t : tv.tensors) {
            t.name = "module." + t.name;  // DataParallel's prefix is accepted
            if (t.name == "module.conv1.weight") {
                std::vector<float> rgb(size_t(64 * 3 * 49));
                for (size_t o = 0; o < 64; ++o)
                    for (size_t c = 0; c < 3; ++c)
                        for (size_t k = 0; k < 49; ++k)
                            rgb[(o * 3 + c) * 49 + k] = float(c + 1) * t.f32[o * 49 + k];
                t.shape = {64, 3, 7, 7};
                t.f32 = rgb;
            }
            if (t.name == "module.fc.weight") {
                t.shape = {1000, 512};
                t.f32.assign(1000 * 512, 0.01f);
            }
            if (t.name == "module.fc.bias") {
                t.shape = {1000};
                t.f32.assign(1000, 0.f);
            }
        }
        safetensors_write(tmp.file("tv.safetensors"), tv);
        ResNet18 m(small_config(2), Device::CPU);
        InitReport r = init_from_checkpoint(tmp.file("tv.safetensors"), {"a", "b"}, m);
        CHECK_FALSE(r.head_kept);
        CHECK(r.head_reason.find("names no genres") != std::string::npos);
        REQUIRE(r.adapted.size() == 1);
        CHECK(r.adapted[0].find("3 input channels summed") != std::string::npos);
        const StFile got = m.state_dict();
        const StTensor& c1 = tensor(got, "conv1.weight");
        const StTensor& s1 = tensor(src, "conv1.weight");
        for (size_t i = 0; i < c1.f32.size(); i += 101)
            CHECK(c1.f32[i] == doctest::Approx(6.0 * s1.f32[i]));  // 1 + 2 + 3
        CHECK(tensor(got, "layer2.0.bn1.weight").f32 == tensor(src, "layer2.0.bn1.weight").f32);
    }
    SUBCASE("not a ResNet18: an error naming the file") {
        StFile junk;
        junk.tensors.push_back({"encoder.weight", StDtype::F32, {2}, {1, 2}, {}});
        safetensors_write(tmp.file("junk.safetensors"), junk);
        ResNet18 m(small_config(2), Device::CPU);
        CHECK_THROWS_WITH_AS(init_from_checkpoint(tmp.file("junk.safetensors"), {"a", "b"}, m),
                             doctest::Contains("junk.safetensors: no tensor fits"), Error);
    }
}

TEST_CASE("frozen backbone: a train step changes fc only; features are fc's input") {
    const int N = 2, G = 3, H = 32, W = 64;
    ResNet18 m(small_config(G, N), Device::CPU);
    std::vector<float> xv(size_t(N * H * W));
    for (size_t i = 0; i < xv.size(); ++i)
        xv[i] = float(std::sin(0.37 * double(i)) * 0.5 + 0.5);
    Tensor x = Tensor::from_vector({N, 1, H, W}, xv, Device::CPU);
    Tensor y = Tensor::from_vector({N, G}, {1, 0, 1, 0, 1, 0}, Device::CPU);

    // Features: the pooled 512-d vectors, with logits = fc(features).
    m.set_mode(Mode::Eval);
    std::vector<float> logits = m.forward(x).to_host();
    Tensor f = m.features();
    REQUIRE(f.shape() == Shape{N, 512});
    std::vector<float> fv = f.to_host();
    const StFile s0 = m.state_dict();
    const StTensor &fw = tensor(s0, "fc.weight"), &fb = tensor(s0, "fc.bias");
    for (int n = 0; n < N; ++n)
        for (int g = 0; g < G; ++g) {
            double z = fb.f32[size_t(g)];
            for (int k = 0; k < 512; ++k)
                z += double(fw.f32[size_t(g * 512 + k)]) * fv[size_t(n * 512 + k)];
            CHECK(logits[size_t(n * G + g)] == doctest::Approx(z).epsilon(1e-4));
        }

    m.set_backbone_frozen(true);
    AdamParams adam;
    adam.lr = 1e-2f;
    adam.weight_decay = 0.1f;
    adam.mode = AdamMode::AdamW;
    m.train_step(x, y, nullptr, adam);
    const StFile s1 = m.state_dict();
    size_t changed_backbone = 0;
    for (size_t i = 0; i < s0.tensors.size(); ++i) {
        const std::string& name = s0.tensors[i].name;
        const bool running = name.find("running_") != std::string::npos ||
                             name.find("num_batches") != std::string::npos;
        if (name.rfind("fc.", 0) == 0)
            CHECK_MESSAGE(s1.tensors[i].f32 != s0.tensors[i].f32, name);
        else if (!running)  // BN statistics follow the batch in train mode, as in PyTorch
            changed_backbone += s1.tensors[i].f32 != s0.tensors[i].f32;
    }
    CHECK(changed_backbone == 0);
    m.set_backbone_frozen(false);
    m.train_step(x, y, nullptr, adam);
    CHECK(tensor(m.state_dict(), "conv1.weight").f32 != tensor(s0, "conv1.weight").f32);
}

TEST_CASE(
    "train --init: the head is kept for the same genres and re-initialised for others; the "
    "backbone frozen for the first epoch") {
    TempDir tmp;
    auto data = [&](const std::string& name, std::vector<std::string> genres) {
        SyntheticDataOptions so;
        so.genres = std::move(genres);
        so.train_tracks = 2;
        so.val_tracks = 2;
        so.chunks_per_track = 1;
        write_synthetic_prepared(tmp.file(name), so);
        return tmp.file(name);
    };
    auto options = [&](const std::string& d, const std::string& out, int epochs) {
        TrainOptions o;
        o.data_dir = d;
        o.out_dir = tmp.file(out);
        o.epochs = epochs;
        o.batch = 2;
        o.seed = 1;
        o.device = Device::CPU;
        return o;
    };
    const std::string a = data("a", {"rock", "jazz"}), b = data("b", {"metal", "jazz"});
    std::ostringstream log;
    train(options(a, "base", 1), log);
    const std::string base = tmp.file("base/best.safetensors");

    TrainOptions same = options(a, "same", 1);
    same.init = base;
    TrainResult rs = train(same, log);
    CHECK(rs.init_summary.find("head (fc): kept: the same 2 genres") != std::string::npos);

    TrainOptions other = options(b, "other", 2);
    other.init = base;
    other.freeze_backbone_epochs = 1;
    std::ostringstream olog;
    TrainResult ro = train(other, olog);
    INFO(olog.str());
    CHECK(ro.init_summary.find("re-initialised: the genre set differs (new here: metal; only in "
                               "the checkpoint: rock)") != std::string::npos);
    CHECK(olog.str().find("epoch 1/2 (backbone frozen)") != std::string::npos);
    CHECK(olog.str().find("epoch 2/2  lr") != std::string::npos);
    // A run of one frozen epoch keeps the checkpoint's backbone weights as they were.
    TrainOptions frozen = options(b, "frozen", 1);
    frozen.init = base;
    frozen.freeze_backbone_epochs = 1;
    train(frozen, log);
    const StFile s0 = safetensors_read(base),
                 s1 = safetensors_read(tmp.file("frozen/last.safetensors"));
    CHECK(tensor(s1, "layer2.1.conv1.weight").f32 == tensor(s0, "layer2.1.conv1.weight").f32);
    CHECK(tensor(s1, "conv1.weight").f32 == tensor(s0, "conv1.weight").f32);

    TrainOptions no_init = options(b, "bad", 1);
    no_init.freeze_backbone_epochs = 1;
    CHECK_THROWS_AS(train(no_init, log), UsageError);
}

TEST_CASE("gnet train --recipe bare: every lever off, explicit options still apply") {
    TempDir tmp;
    SyntheticDataOptions so;
    so.genres = {"rock", "jazz"};
    so.train_tracks = 2;
    so.val_tracks = 2;
    so.chunks_per_track = 1;
    write_synthetic_prepared(tmp.file("d"), so);
    const std::string common = "train --data '" + tmp.file("d") + "' --batch 2 --device cpu ";
    auto r = test::run_gnet(common + "--out '" + tmp.file("bare") +
                            "' --epochs 1 --recipe bare --spec-augment");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("selection score (val track mAP)") != std::string::npos);
    Json c = json_parse(test::read_text(tmp.file("bare/config.json")));
    CHECK(c.at("optimizer") == "adam");
    CHECK(c.at("schedule") == "constant");
    CHECK(c.at("weight_decay").get<double>() == 0.0);
    CHECK(c.at("warmup_epochs").get<double>() == 0.0);
    CHECK(c.at("pos_weight") == "none");
    CHECK(c.at("thresholds") == "fixed");
    CHECK(c.at("spec_augment") == true);  // given explicitly
    CHECK(c.at("ema").get<double>() == 0.0);
    CHECK(c.at("select") == "map");
    CHECK(c.at("windows") == "fixed");
    auto resumed = test::run_gnet(common + "--out '" + tmp.file("bare") +
                                  "' --epochs 2 --recipe bare --resume");
    CHECK(resumed.exit_code == 2);
    CHECK(resumed.err.find("--recipe") != std::string::npos);
    auto both = test::run_gnet(common + "--out '" + tmp.file("x") +
                               "' --tune-thresholds --thresholds global");
    CHECK(both.exit_code == 2);
}

TEST_CASE("gnet train: random windows by default on shards, the fixed chunks on chunk files") {
    TempDir tmp;
    auto data = [&](const std::string& name, DataLayout layout) {
        SyntheticDataOptions so;
        so.genres = {"rock", "jazz"};
        so.train_tracks = 2;
        so.val_tracks = 1;
        so.chunks_per_track = 2;
        so.layout = layout;
        so.extra_frames = 300;  // room for a window to move
        write_synthetic_prepared(tmp.file(name), so);
        return tmp.file(name);
    };
    auto run = [&](const std::string& d, const std::string& out, WindowMode w) {
        TrainOptions o;
        o.data_dir = d;
        o.out_dir = tmp.file(out);
        o.epochs = 1;
        o.batch = 2;
        o.seed = 3;
        o.device = Device::CPU;
        o.spec_augment = false;
        o.windows = w;
        std::ostringstream log;
        train(o, log);
        return std::make_pair(log.str(), safetensors_read(tmp.file(out + "/last.safetensors")));
    };
    const std::string shards = data("shards", DataLayout::Shards);
    const auto [auto_log, auto_w] = run(shards, "auto", WindowMode::Auto);
    const StFile random_w = run(shards, "random", WindowMode::Random).second;
    const StFile fixed_w = run(shards, "fixed", WindowMode::Fixed).second;
    // The default trains on exactly what --windows random trains on, not on the chunks.
    CHECK(tensor(auto_w, "conv1.weight").f32 == tensor(random_w, "conv1.weight").f32);
    CHECK(tensor(auto_w, "conv1.weight").f32 != tensor(fixed_w, "conv1.weight").f32);
    CHECK(json_parse(test::read_text(tmp.file("auto/config.json"))).at("windows") == "auto");
    CHECK(auto_log.find("training on the fixed") == std::string::npos);

    const std::string chunks_log =
        run(data("chunks", DataLayout::ChunkFiles), "chunks", WindowMode::Auto).first;
    CHECK(chunks_log.find("training on the fixed 10 s chunks") != std::string::npos);
}
