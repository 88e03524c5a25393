#include "nn/model_init.h"

#include <cmath>
#include <string>

#include "nn/resnet18.h"

namespace gnet {

namespace {

constexpr double kPi = 3.14159265358979323846;

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_conv_weight(const StateEntry& e) { return e.shape.size() == 4; }

StTensor empty_like(const StateEntry& e) {
    StTensor t;
    t.name = e.name;
    t.shape = e.shape;
    if (e.kind == StateKind::Counter) {
        t.dtype = StDtype::I64;
        t.i64.assign(1, 0);
    } else {
        t.dtype = StDtype::F32;
        t.f32.assign(size_t(shape_numel(e.shape)), 0.f);
    }
    return t;
}

}  // namespace

double InitRng::uniform() { return double(engine_() >> 11) * (1.0 / 9007199254740992.0); }

double InitRng::normal() {
    if (have_spare_) {
        have_spare_ = false;
        return spare_;
    }
    double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    double u2 = uniform();
    double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * kPi * u2);
    have_spare_ = true;
    return r * std::cos(2.0 * kPi * u2);
}

StFile resnet18_init_state(int num_genres, uint64_t seed) {
    InitRng rng(seed);
    StFile f;
    for (const StateEntry& e : resnet18_state_layout(num_genres)) {
        StTensor t = empty_like(e);
        if (e.kind == StateKind::Parameter && is_conv_weight(e)) {
            double std_dev = std::sqrt(2.0 / double(e.shape[0] * e.shape[2] * e.shape[3]));
            for (float& v : t.f32) v = float(std_dev * rng.normal());
        } else if (e.name == "fc.weight" || e.name == "fc.bias") {
            double bound = 1.0 / std::sqrt(512.0);
            for (float& v : t.f32) v = float(bound * (2.0 * rng.uniform() - 1.0));
        } else if (ends_with(e.name, ".weight") || ends_with(e.name, ".running_var")) {
            for (float& v : t.f32) v = 1.f;  // BN gamma, running variance
        }  // BN beta, running mean, num_batches_tracked: 0
        f.tensors.push_back(std::move(t));
    }
    return f;
}

StFile resnet18_pattern_state(int num_genres) {
    StFile f;
    int k = 0;
    for (const StateEntry& e : resnet18_state_layout(num_genres)) {
        StTensor t = empty_like(e);
        auto s = [k](size_t i) { return std::sin(0.37 * double(i) + 0.91 * double(k)); };
        if (e.kind == StateKind::Counter) {
            t.i64[0] = k;
        } else if (is_conv_weight(e)) {
            double scale = 2.0 / std::sqrt(double(e.shape[1] * e.shape[2] * e.shape[3]));
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(scale * s(i));
        } else if (e.name == "fc.weight") {
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(s(i) / std::sqrt(512.0));
        } else if (e.name == "fc.bias" || ends_with(e.name, ".bias")) {
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(0.1 * s(i));
        } else if (ends_with(e.name, ".weight")) {
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(1.0 + 0.2 * s(i));
        } else if (ends_with(e.name, ".running_mean")) {
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(0.05 * s(i));
        } else if (ends_with(e.name, ".running_var")) {
            for (size_t i = 0; i < t.f32.size(); ++i) t.f32[i] = float(1.0 + 0.25 * (1.0 + s(i)));
        }
        f.tensors.push_back(std::move(t));
        ++k;
    }
    return f;
}

std::vector<float> pattern_input(int N, int H, int W) {
    std::vector<float> x(size_t(N) * H * W);
    for (size_t i = 0; i < x.size(); ++i)
        x[i] = float(0.5 + 0.5 * std::sin(0.011 * double(i)) * std::cos(0.0037 * double(i)));
    return x;
}

std::vector<float> pattern_targets(int N, int G) {
    std::vector<float> t(size_t(N) * G);
    for (size_t j = 0; j < t.size(); ++j) t[j] = j % 3 == 0 ? 1.f : 0.f;
    return t;
}

std::vector<float> pattern_pos_weight(int G) {
    std::vector<float> pw(static_cast<size_t>(G));
    for (int g = 0; g < G; ++g) pw[size_t(g)] = float(1.0 + 0.25 * g);
    return pw;
}

}  // namespace gnet
