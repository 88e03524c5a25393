// ResNet18 on the CPU: torchvision's layout; logits, loss, gradients, one Adam step, running
// statistics and an eval forward against torchvision in float64 (tests/fixtures/
// resnet18_reference.json, made by make_resnet18_fixtures.py from the closed-form pattern state);
// one batch overfits; the same seed gives the same losses; resume continues the same curve.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// gnet computes in float32, the reference in float64.
constexpr Tolerance kLogitTol{1e-4, 1e-4};  // atol scaled by max |logit| below
constexpr double kGradRtol = 1e-3;          // per-tensor norm, sum (vs abs_sum), samples (vs rms)
constexpr double kBufferRtol = 1e-4;        // running statistics after the step
// Adam's first step moves every weight by ~lr*sign(g); a gradient within float32 noise of 0 may
// flip sign, so the update sum is allowed 1e-3 * n and samples are taken where |g| is large.
constexpr double kUpdateSumPerElement = 1e-3;
constexpr double kUpdateSampleAtol = 1e-3;

Json load_reference() {
    return json_parse(
        gnet::test::read_text(gnet::test::fixtures_dir() + "/resnet18_reference.json"));
}

std::vector<double> numbers(const Json& a) {
    std::vector<double> v;
    for (const Json& x : a)
        v.push_back(x.get<double>());
    return v;
}

double max_abs(const std::vector<double>& v) {
    double m = 0;
    for (double x : v)
        m = std::max(m, std::fabs(x));
    return m;
}

struct Sums {
    double norm = 0, sum = 0, abs_sum = 0;
};
Sums sums(const std::vector<float>& v) {
    Sums s;
    for (float x : v) {
        s.norm += double(x) * x;
        s.sum += x;
        s.abs_sum += std::fabs(x);
    }
    s.norm = std::sqrt(s.norm);
    return s;
}

void check_logits(const std::vector<float>& got, const Json& ref_json, const char* what) {
    std::vector<double> ref = numbers(ref_json);
    double scale = max_abs(ref);
    INFO(what);
    GNET_CHECK_CLOSE(got, ref, (Tolerance{kLogitTol.atol * scale, kLogitTol.rtol}));
}

// norm within rtol; sum within rtol * abs_sum; samples within rtol*|ref| + rtol*rms.
void check_checksums(const std::string& name, const std::vector<float>& got, const Json& ref,
                     double rtol) {
    INFO("tensor " << name);
    Sums s = sums(got);
    double rnorm = ref.at("norm").get<double>();
    CHECK(std::fabs(s.norm - rnorm) <= rtol * rnorm + 1e-12);
    CHECK(std::fabs(s.sum - ref.at("sum").get<double>()) <=
          rtol * ref.at("abs_sum").get<double>() + 1e-12);
    double rms = rnorm / std::sqrt(double(got.size()));
    for (const Json& smp : ref.at("samples")) {
        size_t i = size_t(smp.at(size_t(0)).get<int64_t>());
        double r = smp.at(size_t(1)).get<double>();
        REQUIRE(i < got.size());
        CHECK_MESSAGE(std::fabs(got[i] - r) <= rtol * std::fabs(r) + rtol * rms,
                      "[" << i << "] got " << got[i] << " ref " << r);
    }
}

ResNet18Config small_config(int G, int N, int H, int W) {
    ResNet18Config c;
    c.num_genres = G;
    c.max_batch = N;
    c.height = H;
    c.width = W;
    return c;
}

struct Batch {
    Tensor x, targets, pos_weight;
};
Batch pattern_batch(int N, int G, int H, int W) {
    return {Tensor::from_vector({N, 1, H, W}, pattern_input(N, H, W), Device::CPU),
            Tensor::from_vector({N, G}, pattern_targets(N, G), Device::CPU),
            Tensor::from_vector({G}, pattern_pos_weight(G), Device::CPU)};
}

std::vector<float> train_losses(ResNet18& m, const Batch& b, int steps, AdamParams adam) {
    std::vector<float> out;
    for (int s = 0; s < steps; ++s)
        out.push_back(m.train_step(b.x, b.targets, &b.pos_weight, adam));
    return out;
}

}  // namespace

TEST_CASE("ResNet18 state layout is torchvision's state_dict, name for name") {
    Json ref = load_reference();
    std::vector<StateEntry> layout = resnet18_state_layout(10);
    const Json& names = ref.at("state_names");
    REQUIRE(layout.size() == names.size());
    for (size_t i = 0; i < layout.size(); ++i)
        CHECK(layout[i].name == names[i].get<std::string>());
    CHECK(layout.size() == 122);

    ResNet18 m(small_config(10, 1, 32, 32), Device::CPU);
    int64_t n_params = 0;
    for (const auto& p : m.parameters())
        n_params += p.tensor.numel();
    CHECK(n_params == 11175370);  // torchvision resnet18, 1 input channel, 10 classes
    CHECK(m.parameters().size() == 62);
    CHECK(m.gradient_arena().numel() == m.parameter_arena().numel());
    CHECK(m.adam_m_arena().numel() == m.parameter_arena().numel());
}

TEST_CASE(
    "ResNet18 matches torchvision (float64): logits, loss, gradients, Adam, running stats, eval") {
    Json ref = load_reference();
    const int N = int(ref.at("N").get<int64_t>()), H = int(ref.at("H").get<int64_t>()),
              W = int(ref.at("W").get<int64_t>()), G = int(ref.at("G").get<int64_t>());
    ResNet18 m(small_config(G, N, H, W), Device::CPU);
    m.load_state_dict(resnet18_pattern_state(G), "pattern");
    Batch b = pattern_batch(N, G, H, W);
    // Eval mode on the pattern's running statistics (changes nothing), then one train step.
    m.set_mode(Mode::Eval);
    check_logits(m.forward(b.x).to_host(), ref.at("logits_eval"), "eval logits");
    m.set_mode(Mode::Train);

    std::vector<std::vector<float>> before;
    for (const auto& p : m.parameters())
        before.push_back(p.tensor.to_host());

    AdamParams adam;
    adam.lr = float(ref.at("lr").get<double>());
    float loss = m.train_step(b.x, b.targets, &b.pos_weight, adam);
    CHECK(m.adam_steps() == 1);
    CHECK(std::fabs(loss - ref.at("loss").get<double>()) <= 1e-5 * ref.at("loss").get<double>());
    check_logits(m.logits().to_host(), ref.at("logits_train"), "train logits");

    // Gradients (the arena still holds them after Adam).
    const Json& grads = ref.at("grads");
    for (const auto& g : m.gradients())
        check_checksums(g.name, g.tensor.to_host(), grads.at(g.name), kGradRtol);

    // One Adam step: u = (before - after) / lr.
    const Json& upd = ref.at("adam_update");
    auto params = m.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
        std::vector<float> after = params[i].tensor.to_host();
        std::vector<double> u(after.size());
        double usum = 0;
        for (size_t k = 0; k < u.size(); ++k) {
            u[k] = (double(before[i][k]) - after[k]) / adam.lr;
            usum += u[k];
        }
        const Json& r = upd.at(params[i].name);
        INFO("adam update of " << params[i].name);
        CHECK(std::fabs(usum - r.at("sum").get<double>()) <=
              kUpdateSumPerElement * double(u.size()));
        for (const Json& smp : r.at("samples")) {
            size_t k = size_t(smp.at(size_t(0)).get<int64_t>());
            // float32 parameters: the update is only resolved to ~ulp(param)/lr.
            double tol = kUpdateSampleAtol + 4.0 * std::fabs(before[i][k]) * 1.2e-7 / adam.lr;
            CHECK(std::fabs(u[k] - smp.at(size_t(1)).get<double>()) <= tol);
        }
    }

    // Running statistics and counters after the train forward.
    StFile state = m.state_dict();
    const Json& bufs = ref.at("buffers_after");
    const Json& counters = ref.at("num_batches_tracked_after");
    for (const StTensor& t : state.tensors) {
        if (bufs.contains(t.name)) check_checksums(t.name, t.f32, bufs.at(t.name), kBufferRtol);
        if (counters.contains(t.name)) CHECK(t.i64[0] == counters.at(t.name).get<int64_t>());
    }
}

TEST_CASE(
    "ResNet18 eval mode: running statistics untouched, each sample independent of the batch") {
    const int G = 3, H = 32, W = 48;
    ResNet18 m(small_config(G, 3, H, W), Device::CPU);
    m.load_state_dict(resnet18_pattern_state(G), "pattern");
    m.set_mode(Mode::Eval);
    Batch b = pattern_batch(3, G, H, W);
    StFile s0 = m.state_dict();
    std::vector<float> all = m.forward(b.x).to_host();
    std::vector<float> x0 = b.x.to_host();
    x0.resize(size_t(H) * W);
    std::vector<float> one =
        m.forward(Tensor::from_vector({1, 1, H, W}, x0, Device::CPU)).to_host();
    GNET_CHECK_CLOSE(one, std::vector<float>(all.begin(), all.begin() + G),
                     (Tolerance{1e-6, 1e-5}));
    StFile s1 = m.state_dict();
    for (size_t i = 0; i < s0.tensors.size(); ++i) {
        CHECK(s0.tensors[i].f32 == s1.tensors[i].f32);
        CHECK(s0.tensors[i].i64 == s1.tensors[i].i64);
    }
    CHECK_THROWS_WITH(m.backward(Tensor::zeros({1, G}, Device::CPU)),
                      doctest::Contains("train-mode"));
}

TEST_CASE("ResNet18 backward accumulates parameter gradients; zero_grad clears them") {
    const int N = 2, G = 3, H = 32, W = 32;
    ResNet18 m(small_config(G, N, H, W), Device::CPU);
    m.init(1);
    Batch b = pattern_batch(N, G, H, W);
    m.forward(b.x);
    Tensor d = Tensor::from_vector({N, G}, {0.5f, -1.f, 0.25f, 2.f, -0.5f, 1.f}, Device::CPU);
    m.zero_grad();
    m.backward(d);
    std::vector<std::vector<float>> once;
    for (const auto& g : m.gradients())
        once.push_back(g.tensor.to_host());
    m.backward(d);
    auto twice = m.gradients();
    for (size_t i = 0; i < once.size(); ++i) {
        std::vector<float> want(once[i]);
        for (float& v : want)
            v *= 2.f;
        INFO(twice[i].name);
        GNET_CHECK_CLOSE(twice[i].tensor.to_host(), want, (Tolerance{1e-7, 1e-5}));
    }
    CHECK(sums(once.front()).abs_sum > 0);
    m.zero_grad();
    for (const auto& g : m.gradients())
        CHECK(sums(g.tensor.to_host()).abs_sum == 0);
}

TEST_CASE("ResNet18 rejects bad inputs with clear errors") {
    ResNet18 m(small_config(4, 2, 32, 32), Device::CPU);
    CHECK_THROWS_WITH(m.forward(Tensor::zeros({2, 1, 32, 31}, Device::CPU)),
                      doctest::Contains("expected [N, 1, 32, 32]"));
    CHECK_THROWS_WITH(m.forward(Tensor::zeros({3, 1, 32, 32}, Device::CPU)),
                      doctest::Contains("batch of 1..2"));
    m.forward(Tensor::zeros({2, 1, 32, 32}, Device::CPU));
    CHECK_THROWS_WITH(m.backward(Tensor::zeros({2, 5}, Device::CPU)), doctest::Contains("[2, 4]"));
    CHECK_THROWS_WITH(ResNet18(small_config(4, 1, 0, 8), Device::CPU),
                      doctest::Contains("bad configuration"));
    CHECK_THROWS_WITH(ResNet18(small_config(0, 1, 8, 8), Device::CPU),
                      doctest::Contains("bad configuration"));
}

TEST_CASE("torchvision initialisation statistics and seeding") {
    ResNet18 m(small_config(10, 1, 32, 32), Device::CPU);
    m.init(5);
    for (const auto& p : m.parameters()) {
        std::vector<float> v = p.tensor.to_host();
        Sums s = sums(v);
        double n = double(v.size()), mean = s.sum / n,
               sd = std::sqrt(s.norm * s.norm / n - mean * mean);
        INFO(p.name);
        if (p.tensor.rank() == 4) {
            double want =
                std::sqrt(2.0 / double(p.tensor.dim(0) * p.tensor.dim(2) * p.tensor.dim(3)));
            CHECK(std::fabs(sd / want - 1.0) < 6.0 / std::sqrt(n) + 0.01);
            CHECK(std::fabs(mean) < 6.0 * want / std::sqrt(n));
        } else if (p.name.rfind("fc.", 0) == 0) {
            double bound = 1.0 / std::sqrt(512.0);
            for (float x : v)
                CHECK(std::fabs(x) <= bound);
        } else if (p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0) {
            CHECK(v == std::vector<float>(v.size(), 1.f));
        } else {
            CHECK(v == std::vector<float>(v.size(), 0.f));
        }
    }
    StFile a = m.state_dict();
    m.init(5);
    StFile b = m.state_dict();
    m.init(6);
    StFile c = m.state_dict();
    CHECK(a.tensors[0].f32 == b.tensors[0].f32);
    CHECK(a.tensors[0].f32 != c.tensors[0].f32);
}

TEST_CASE("one batch overfits; the same seed gives the same losses") {
    const int N = 4, G = 5, H = 32, W = 64;
    Batch b = pattern_batch(N, G, H, W);
    AdamParams adam;
    adam.lr = 1e-3f;
    ResNet18 m1(small_config(G, N, H, W), Device::CPU);
    m1.init(11);
    std::vector<float> l1 = train_losses(m1, b, 40, adam);
    MESSAGE("losses: first " << l1.front() << ", 10th " << l1[9] << ", last " << l1.back());
    CHECK(l1.front() > 0.3f);
    CHECK(l1.back() < 0.02f);

    ResNet18 m2(small_config(G, N, H, W), Device::CPU);
    m2.init(11);
    std::vector<float> l2 = train_losses(m2, b, 5, adam);
    CHECK(l2 == std::vector<float>(l1.begin(), l1.begin() + 5));
    m2.init(12);
    CHECK(train_losses(m2, b, 1, adam)[0] != l1[0]);
}

TEST_CASE("resume from a checkpoint and optimizer state continues the same loss curve") {
    const int N = 2, G = 3, H = 32, W = 48;
    gnet::test::TempDir dir;
    Batch b = pattern_batch(N, G, H, W);
    AdamParams adam;
    adam.lr = 2e-3f;
    adam.weight_decay = 1e-2f;
    adam.mode = AdamMode::AdamW;
    ResNet18 a(small_config(G, N, H, W), Device::CPU);
    a.init(3);
    train_losses(a, b, 2, adam);
    CheckpointMeta meta;
    meta.genres = {"a", "b", "c"};
    write_checkpoint(dir.file("m.safetensors"), a, meta);
    write_optimizer_state(dir.file("opt.safetensors"), a);
    std::vector<float> cont = train_losses(a, b, 3, adam);

    ResNet18 r(small_config(G, N, H, W), Device::CPU);
    load_checkpoint(read_checkpoint(dir.file("m.safetensors")), r);
    read_optimizer_state(dir.file("opt.safetensors"), r);
    CHECK(r.adam_steps() == 2);
    CHECK(train_losses(r, b, 3, adam) == cont);

    // Without the optimizer state the curve differs (fresh moments, step 1).
    ResNet18 f(small_config(G, N, H, W), Device::CPU);
    load_checkpoint(read_checkpoint(dir.file("m.safetensors")), f);
    CHECK(train_losses(f, b, 3, adam)[1] != cont[1]);
}

TEST_CASE(
    "a gnet checkpoint loads into torchvision (runs scripts/check_checkpoint_in_torch.py when "
    "GNET_TORCH_CHECK=1)") {
    const char* want = std::getenv("GNET_TORCH_CHECK");
    if (!want || std::string(want) != "1") {
        MESSAGE("skipped: set GNET_TORCH_CHECK=1 (needs /usr/bin/python3 with torch, torchvision)");
        return;
    }
    const int N = 2, G = 4, H = 64, W = 96;
    gnet::test::TempDir dir;
    ResNet18 m(small_config(G, N, H, W), Device::CPU);
    m.init(21);
    Batch b = pattern_batch(N, G, H, W);
    AdamParams adam;
    train_losses(m, b, 2, adam);  // running stats and weights move away from the init
    m.set_mode(Mode::Eval);
    std::vector<float> logits = m.forward(b.x).to_host();
    CheckpointMeta meta;
    meta.genres = {"rock", "jazz", "pop", "folk"};
    write_checkpoint(dir.file("m.safetensors"), m, meta);
    std::string expect;
    for (float v : logits) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g,", double(v));
        expect += buf;
    }
    expect.pop_back();
    auto r = gnet::test::run_command("/usr/bin/python3 " + gnet::test::fixtures_dir() +
                                     "/../../scripts/check_checkpoint_in_torch.py " +
                                     dir.file("m.safetensors") +
                                     " --height 64 --width 96 --batch 2 "
                                     "--expect=" +
                                     expect);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
}
