// ResNet18Bf16 on the CPU (the bf16-faithful twins) against the float32 ResNet18 from the same
// initial state: the same network, so logits and gradients agree up to bf16's precision; the
// state_dict (OIHW <-> OHWI) and optimizer state round-trip exactly; checkpoints move between the
// two precisions; make_network picks the model --precision asks for.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "nn/model_init.h"
#include "nn/network.h"
#include "nn/resnet18.h"
#include "nn/resnet18_bf16.h"
#include "nn/traffic.h"

using namespace gnet;

namespace {

ResNet18Config small_config(Precision precision) {
    ResNet18Config c;
    c.num_genres = 4;
    c.max_batch = 2;
    c.height = 32;
    c.width = 40;
    c.init_seed = 3;
    c.precision = precision;
    c.cpu_backend = CpuBackend::Reference;
    return c;
}

Tensor random_input(int N, int H, int W, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<float> v(size_t(N) * H * W);
    for (float& e : v)
        e = u(rng);
    return Tensor::from_vector({N, 1, H, W}, v, Device::CPU);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return aa == 0 && bb == 0 ? 1.0 : ab / std::sqrt(aa * bb + 1e-300);
}

}  // namespace

TEST_CASE("ResNet18Bf16 on the CPU computes ResNet18: logits, loss and gradients within bf16") {
    ResNet18 ref(small_config(Precision::Fp32), Device::CPU);
    ResNet18Bf16 bf(small_config(Precision::Bf16), Device::CPU);
    const Tensor x = random_input(2, 32, 40, 1);
    const Tensor targets = Tensor::from_vector({2, 4}, {1, 0, 0, 1, 0, 1, 1, 0}, Device::CPU);

    // Train-mode forward: batch statistics. bf16 operands and activations: ~2^-8 per rounding.
    const std::vector<float> l_ref = ref.forward(x).to_host(), l_bf = bf.forward(x).to_host();
    CHECK(cosine(l_ref, l_bf) > 0.995);

    AdamParams adam;
    const float loss_ref = ref.train_step(x, targets, nullptr, adam);
    const float loss_bf = bf.train_step(x, targets, nullptr, adam);
    CHECK(loss_bf == doctest::Approx(loss_ref).epsilon(0.02));

    // Gradients: at this size (batch 2, a 32 x 40 input, 4 values per channel in layer4's batch
    // norms) they are very sensitive, even in float32: a relative 2^-8 perturbation of the input
    // alone turns them by as much as bf16 does. So the yardstick is float32's own sensitivity:
    // bf16's gradients must be about as close to float32's as float32's are to a perturbed run.
    ResNet18 perturbed(small_config(Precision::Fp32), Device::CPU);
    {
        std::vector<float> xv = x.to_host();
        std::mt19937 rng(9);
        std::normal_distribution<float> noise(0.f, 1.f / 256);
        for (float& e : xv)
            e *= 1 + noise(rng);
        perturbed.train_step(Tensor::from_vector({2, 1, 32, 40}, xv, Device::CPU), targets, nullptr,
                             adam);
    }
    const auto g_bf = bf.gradients();
    const auto g_ref = ref.gradients(), g_pert = perturbed.gradients();
    REQUIRE(g_bf.size() == g_ref.size());
    double cos_bf = 0, cos_pert = 0;
    for (size_t i = 0; i < g_ref.size(); ++i) {
        REQUIRE(g_bf[i].first == g_ref[i].name);
        const std::vector<float> r = g_ref[i].tensor.to_host();
        cos_bf += cosine(r, g_bf[i].second) / double(g_ref.size());
        cos_pert += cosine(r, g_pert[i].tensor.to_host()) / double(g_ref.size());
    }
    MESSAGE("mean gradient cosine to float32: bf16 " << cos_bf << ", float32 with the input "
                                                     << "perturbed by 2^-8: " << cos_pert);
    CHECK(cos_bf > cos_pert - 0.05);
    CHECK(cos_bf > 0.5);  // a wiring error (a transposed weight, a lost residual) gives ~0
    CHECK(bf.adam_steps() == 1);
}

TEST_CASE("ResNet18Bf16's fast CPU backend runs the twins' bf16 arithmetic") {
    if (effective_cpu_backend(CpuBackend::Fast) != CpuBackend::Fast) {
        MESSAGE("this CPU has no AVX2+FMA: the fast backend is not used here");
        return;
    }
    // The same operands and roundings with float32 sums in another order (Winograd, packed
    // GEMM): only values whose sums straddle a bf16 rounding boundary differ, by one ulp. In
    // eval mode that leaves the logits all but equal. A train step at this size amplifies such
    // flips as it does any 2^-8 perturbation (see the test above), so there the yardstick is the
    // specification's own distance to float32: the fast mode must be as close to it.
    ResNet18Config cr = small_config(Precision::Bf16), cf = cr, c32 = small_config(Precision::Fp32);
    cf.cpu_backend = CpuBackend::Fast;
    ResNet18Bf16 ref(cr, Device::CPU), fast(cf, Device::CPU);
    ResNet18 f32(c32, Device::CPU);
    const Tensor x = random_input(2, 32, 40, 4);
    const Tensor targets = Tensor::from_vector({2, 4}, {1, 0, 1, 0, 0, 0, 1, 1}, Device::CPU);
    ref.set_mode(Mode::Eval);
    fast.set_mode(Mode::Eval);
    const double c_eval = cosine(ref.forward(x).to_host(), fast.forward(x).to_host());
    ref.set_mode(Mode::Train);
    fast.set_mode(Mode::Train);
    AdamParams adam;
    const float loss_ref = ref.train_step(x, targets, nullptr, adam);
    const float loss_fast = fast.train_step(x, targets, nullptr, adam);
    const float loss_32 = f32.train_step(x, targets, nullptr, adam);
    const auto g_ref = ref.gradients(), g_fast = fast.gradients();
    const auto g_32 = f32.gradients();
    REQUIRE(g_ref.size() == g_fast.size());
    double cos_ref = 0, cos_fast = 0;
    for (size_t i = 0; i < g_32.size(); ++i) {
        const std::vector<float> r = g_32[i].tensor.to_host();
        cos_ref += cosine(r, g_ref[i].second) / double(g_32.size());
        cos_fast += cosine(r, g_fast[i].second) / double(g_32.size());
    }
    MESSAGE("eval logits cosine fast vs reference bf16 "
            << c_eval << "; loss fast " << loss_fast << ", reference " << loss_ref << ", float32 "
            << loss_32 << "; mean gradient cosine to float32: "
            << "fast " << cos_fast << ", reference " << cos_ref);
    CHECK(c_eval > 0.9999);
    CHECK(loss_fast == doctest::Approx(loss_32).epsilon(0.02));
    CHECK(cos_fast > cos_ref - 0.05);
    CHECK(cos_fast > 0.5);
}

TEST_CASE("ResNet18Bf16 state_dict and optimizer state round-trip through torchvision's layout") {
    ResNet18Bf16 a(small_config(Precision::Bf16), Device::CPU);
    const StFile init = resnet18_init_state(4, 3);
    const StFile s = a.state_dict();
    REQUIRE(s.tensors.size() == init.tensors.size());
    for (size_t i = 0; i < s.tensors.size(); ++i) {
        CAPTURE(s.tensors[i].name);
        CHECK(s.tensors[i].f32 == init.tensors[i].f32);
        CHECK(s.tensors[i].i64 == init.tensors[i].i64);
    }
    // One step moves weights, moments and counters; a second model loaded from them agrees.
    const Tensor x = random_input(2, 32, 40, 2);
    const Tensor t = Tensor::from_vector({2, 4}, {0, 1, 0, 0, 1, 0, 0, 1}, Device::CPU);
    a.train_step(x, t, nullptr, AdamParams{});
    ResNet18Config cb = small_config(Precision::Bf16);
    cb.init_seed = std::nullopt;
    ResNet18Bf16 b(cb, Device::CPU);
    b.load_state_dict(a.state_dict(), "a");
    b.load_optimizer_state(a.optimizer_state(), "a");
    b.set_adam_steps(a.adam_steps());
    const StFile sa = a.state_dict(), sb = b.state_dict();
    for (size_t i = 0; i < sa.tensors.size(); ++i)
        CHECK(sa.tensors[i].f32 == sb.tensors[i].f32);
    const StFile oa = a.optimizer_state(), ob = b.optimizer_state();
    for (size_t i = 0; i < oa.tensors.size(); ++i)
        CHECK(oa.tensors[i].f32 == ob.tensors[i].f32);
    a.set_mode(Mode::Eval);
    b.set_mode(Mode::Eval);
    CHECK(a.forward(x).to_host() == b.forward(x).to_host());

    // The float32 model reads the bf16 model's state (and so its checkpoints) unchanged.
    ResNet18Config cf = small_config(Precision::Fp32);
    cf.init_seed = std::nullopt;
    ResNet18 f(cf, Device::CPU);
    f.load_state_dict(sa, "bf16 model");
    const StFile sf = f.state_dict();
    for (size_t i = 0; i < sa.tensors.size(); ++i)
        CHECK(sa.tensors[i].f32 == sf.tensors[i].f32);
}

TEST_CASE("The bf16 step's traffic count: every layer call, FLOPs from the conv shapes") {
    // FLOPs expected from ResNet18's shapes at 32 x 40: each conv 2*N*OH*OW*OC*C*K*K per pass,
    // three passes but no backward-data for the stem; the fc layer 2*N*512*G, three times.
    const int N = 2, G = 4;
    double conv_fwd = 0, stem_fwd = 0;
    auto conv = [&](int C, int& H, int& W, int OC, int K, int stride, int pad) {
        const int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
        const double f = 2.0 * N * OH * OW * OC * C * K * K;
        conv_fwd += f;
        H = OH, W = OW;
        return f;
    };
    int H = 32, W = 40;
    stem_fwd = conv(1, H, W, 64, 7, 2, 3);
    H = (H + 2 - 3) / 2 + 1, W = (W + 2 - 3) / 2 + 1;  // max pool 3x3/2
    int C = 64;
    for (int stage = 0; stage < 4; ++stage)
        for (int b = 0; b < 2; ++b) {
            const int OC = 64 << stage, stride = b == 0 && stage > 0 ? 2 : 1;
            int h = H, w = W;
            if (stride != 1 || C != OC) conv(C, h, w, OC, 1, stride, 0);  // downsample
            conv(C, H, W, OC, 3, stride, 1);
            conv(OC, H, W, OC, 3, 1, 1);
            C = OC;
        }
    const double fc = 2.0 * N * 512 * G;

    ResNet18Config c = small_config(Precision::Bf16);
    c.cpu_backend = CpuBackend::Fast;
    ResNet18Bf16 m(c, Device::CPU);
    const Tensor x = random_input(N, 32, 40, 6);
    const Tensor t = Tensor::from_vector({N, G}, {1, 0, 0, 1, 0, 1, 1, 0}, Device::CPU);
    TrafficScope scope;
    m.train_step(x, t, nullptr, AdamParams{});
    const auto& ops = scope.ops();
    CHECK(ops.at("conv_forward").calls == 20);
    CHECK(ops.at("conv_backward_data").calls == 19);
    CHECK(ops.at("conv_backward_weight").calls == 20);
    CHECK(ops.at("bn_apply").calls == 20);
    CHECK(ops.at("bn_backward").calls == 20);
    CHECK(ops.at("adam").calls == 1);
    CHECK(ops.at("conv_forward").flops == doctest::Approx(conv_fwd));
    CHECK(ops.at("conv_backward_data").flops == doctest::Approx(conv_fwd - stem_fwd));
    CHECK(scope.flops() == doctest::Approx(3 * conv_fwd - stem_fwd + 3 * fc));
    // Adam reads and writes every float32 parameter, gradient and moment and writes the bf16
    // copy: 30 bytes per parameter.
    int64_t params = 0;
    for (const StTensor& e : m.state_dict().tensors)
        if (e.dtype == StDtype::F32 && e.name.find("running_") == std::string::npos)
            params += e.numel();
    CHECK(ops.at("adam").bytes == doctest::Approx(30.0 * double(params)));
    // The innermost scope alone counts.
    {
        TrafficScope inner;
        m.train_step(x, t, nullptr, AdamParams{});
        CHECK(inner.ops().at("adam").calls == 1);
    }
    CHECK(ops.at("adam").calls == 1);
}

TEST_CASE("make_network builds the model the precision asks for") {
    CHECK(dynamic_cast<ResNet18Bf16*>(
              make_network(small_config(Precision::Bf16), Device::CPU).get()) != nullptr);
    CHECK(dynamic_cast<ResNet18*>(make_network(small_config(Precision::Fp32), Device::CPU).get()) !=
          nullptr);
    // Auto on the CPU: float32 (the fast backend), unless --precision chose otherwise.
    CHECK(resolve_precision(Precision::Auto, Device::CPU) == Precision::Fp32);
    set_precision_choice(Precision::Bf16);
    CHECK(resolve_precision(Precision::Auto, Device::CPU) == Precision::Bf16);
    set_precision_choice(Precision::Auto);
    CHECK(parse_precision("fp32") == Precision::Fp32);
    CHECK_THROWS_WITH(parse_precision("fp16"), doctest::Contains("fp16"));
}
