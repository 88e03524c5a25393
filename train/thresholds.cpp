#include "train/thresholds.h"

#include <cmath>
#include <cstdio>

#include "kernels/error.h"
#include "train/metrics.h"

namespace gnet {

ThresholdPolicy parse_threshold_policy(const std::string& text) {
    if (text == "fixed") return ThresholdPolicy::Fixed;
    if (text == "global") return ThresholdPolicy::Global;
    if (text == "auto") return ThresholdPolicy::Auto;
    if (text == "per-genre") return ThresholdPolicy::PerGenre;
    throw UsageError("unknown threshold policy '" + text +
                     "' (expected fixed, global, auto or per-genre)");
}

const char* threshold_policy_name(ThresholdPolicy p) {
    switch (p) {
        case ThresholdPolicy::Fixed:
            return "fixed";
        case ThresholdPolicy::Global:
            return "global";
        case ThresholdPolicy::Auto:
            return "auto";
        case ThresholdPolicy::PerGenre:
            return "per-genre";
    }
    return "?";
}

namespace {

float best_global_threshold(int N, int G, const float* probs, const float* targets) {
    float best_t = 0.5f;
    double best_f1 = -1;
    for (int k = 1; k <= 19; ++k) {
        const float t = 0.05f * float(k);
        const double f1 =
            compute_metrics(N, G, probs, targets, std::vector<float>(size_t(G), t)).macro_f1;
        const bool nearer = std::fabs(t - 0.5f) < std::fabs(best_t - 0.5f);
        if (f1 > best_f1 + 1e-12 || (std::fabs(f1 - best_f1) <= 1e-12 && nearer)) {
            best_f1 = f1;
            best_t = t;
        }
    }
    return best_t;
}

}  // namespace

ThresholdChoice choose_thresholds(int N, int G, const float* probs, const float* targets,
                                  ThresholdPolicy policy, int min_positives) {
    ThresholdChoice c;
    c.thresholds.assign(size_t(G), 0.5f);
    c.tuned.assign(size_t(G), false);
    c.positives.assign(size_t(G), 0);
    for (int n = 0; n < N; ++n)
        for (int g = 0; g < G; ++g)
            c.positives[size_t(g)] += targets[int64_t(n) * G + g] > 0.5f;
    if (policy == ThresholdPolicy::Fixed || N == 0) return c;
    if (policy == ThresholdPolicy::Global || policy == ThresholdPolicy::Auto)
        c.global = best_global_threshold(N, G, probs, targets);
    std::vector<float> own;
    if (policy == ThresholdPolicy::PerGenre || policy == ThresholdPolicy::Auto)
        own = tune_thresholds(N, G, probs, targets);
    for (int g = 0; g < G; ++g) {
        const bool tune = policy == ThresholdPolicy::PerGenre ||
                          (policy == ThresholdPolicy::Auto &&
                           c.positives[size_t(g)] >= std::max(1, min_positives));
        c.tuned[size_t(g)] = tune && c.positives[size_t(g)] > 0;
        c.thresholds[size_t(g)] = c.tuned[size_t(g)] ? own[size_t(g)] : c.global;
    }
    return c;
}

std::string describe_thresholds(const ThresholdChoice& choice,
                                const std::vector<std::string>& genres, ThresholdPolicy policy) {
    size_t width = 5;
    for (const std::string& g : genres)
        width = std::max(width, g.size());
    std::string out;
    for (size_t g = 0; g < genres.size(); ++g) {
        const int p = choice.positives[g];
        const char* how = choice.tuned[g]                       ? "tuned"
                          : policy == ThresholdPolicy::Fixed    ? "fixed"
                          : policy == ThresholdPolicy::PerGenre ? "default (no positive)"
                                                                : "global";
        char line[256];
        std::snprintf(line, sizeof line, "  %-*s  %.3f  %s (%d positive%s)\n", int(width),
                      genres[g].c_str(), double(choice.thresholds[g]), how, p, p == 1 ? "" : "s");
        out += line;
    }
    return out;
}

}  // namespace gnet
