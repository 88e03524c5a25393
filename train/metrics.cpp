#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>

#include "kernels/error.h"

namespace gnet {

namespace {

// Indices 0..N-1 sorted by score, descending; ties by index (the order inside a tie never affects
// a result: every user groups equal scores).
std::vector<int> order_descending(int N, const float* scores, int stride) {
    std::vector<int> idx(static_cast<size_t>(N));
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) {
        float sa = scores[int64_t(a) * stride], sb = scores[int64_t(b) * stride];
        return sa > sb || (sa == sb && a < b);
    });
    return idx;
}

bool is_positive(float label) {
    return label > 0.5f;
}

void check_labels(int N, const float* labels, int stride) {
    for (int n = 0; n < N; ++n) {
        float v = labels[int64_t(n) * stride];
        GNET_CHECK(v == 0.f || v == 1.f, "targets must be 0 or 1, got " + std::to_string(v) +
                                             " at sample " + std::to_string(n));
    }
}

// NaN never equals itself: equal-score grouping would never end, so non-finite scores are an
// error (a model with NaN weights, or a diverged run).
void check_scores(int N, int G, const float* scores) {
    for (int64_t i = 0; i < int64_t(N) * G; ++i)
        if (!std::isfinite(scores[i]))
            throw Error("score of sample " + std::to_string(i / G) + ", genre " +
                        std::to_string(i % G) + " is " +
                        (std::isnan(scores[i]) ? "NaN" : "infinite") +
                        ": the model produced non-finite outputs (corrupt or diverged weights)");
}

double ratio(double num, double den) {
    return den > 0 ? num / den : 0.0;
}

}  // namespace

std::optional<double> average_precision(int N, const float* scores, const float* labels,
                                        int stride) {
    if (N <= 0) return std::nullopt;
    for (int n = 0; n < N; ++n)
        if (!std::isfinite(scores[int64_t(n) * stride]))
            check_scores(1, 1, &scores[int64_t(n) * stride]);
    int64_t positives = 0;
    for (int n = 0; n < N; ++n)
        positives += is_positive(labels[int64_t(n) * stride]);
    if (positives == 0) return std::nullopt;
    std::vector<int> idx = order_descending(N, scores, stride);
    double ap = 0, prev_recall = 0;
    int64_t tp = 0, seen = 0;
    for (int i = 0; i < N;) {
        float s = scores[int64_t(idx[size_t(i)]) * stride];
        while (i < N && scores[int64_t(idx[size_t(i)]) * stride] == s) {
            tp += is_positive(labels[int64_t(idx[size_t(i)]) * stride]);
            ++seen;
            ++i;
        }
        double recall = double(tp) / double(positives);
        ap += (recall - prev_recall) * (double(tp) / double(seen));
        prev_recall = recall;
    }
    return ap;
}

std::optional<double> roc_auc(int N, const float* scores, const float* labels, int stride) {
    if (N <= 0) return std::nullopt;
    for (int n = 0; n < N; ++n)
        if (!std::isfinite(scores[int64_t(n) * stride]))
            check_scores(1, 1, &scores[int64_t(n) * stride]);
    int64_t positives = 0;
    for (int n = 0; n < N; ++n)
        positives += is_positive(labels[int64_t(n) * stride]);
    int64_t negatives = int64_t(N) - positives;
    if (positives == 0 || negatives == 0) return std::nullopt;
    // Ascending average ranks (1-based): U = sum of positive ranks - P (P + 1) / 2.
    std::vector<int> idx = order_descending(N, scores, stride);
    std::reverse(idx.begin(), idx.end());
    double rank_sum = 0;
    for (int i = 0; i < N;) {
        float s = scores[int64_t(idx[size_t(i)]) * stride];
        int j = i;
        int64_t pos_in_group = 0;
        while (j < N && scores[int64_t(idx[size_t(j)]) * stride] == s) {
            pos_in_group += is_positive(labels[int64_t(idx[size_t(j)]) * stride]);
            ++j;
        }
        double avg_rank = 0.5 * (double(i + 1) + double(j));  // ranks i+1 .. j
        rank_sum += avg_rank * double(pos_in_group);
        i = j;
    }
    double u = rank_sum - 0.5 * double(positives) * double(positives + 1);
    return u / (double(positives) * double(negatives));
}

MetricsReport compute_metrics(int N, int G, const float* probs, const float* targets,
                              const std::vector<float>& thresholds) {
    GNET_CHECK(N >= 0 && G > 0, "metrics need N >= 0 and G > 0");
    GNET_CHECK(
        thresholds.empty() || int(thresholds.size()) == G,
        "expected " + std::to_string(G) + " thresholds, got " + std::to_string(thresholds.size()));
    MetricsReport r;
    r.samples = N;
    r.per_genre.resize(size_t(G));
    if (N == 0) return r;  // nothing to measure: every genre n/a
    check_labels(N * G, targets, 1);
    check_scores(N, G, probs);
    int64_t tp_all = 0, fp_all = 0, fn_all = 0;
    double sum_p = 0, sum_r = 0, sum_f = 0, sum_ap = 0, sum_auc = 0;
    int auc_count = 0;
    for (int g = 0; g < G; ++g) {
        GenreMetrics& m = r.per_genre[size_t(g)];
        float t = thresholds.empty() ? 0.5f : thresholds[size_t(g)];
        for (int n = 0; n < N; ++n) {
            bool truth = is_positive(targets[int64_t(n) * G + g]);
            bool pred = probs[int64_t(n) * G + g] >= t;
            m.support += truth;
            m.negatives += !truth;
            m.tp += truth && pred;
            m.fp += !truth && pred;
            m.fn += truth && !pred;
        }
        tp_all += m.tp;
        fp_all += m.fp;
        fn_all += m.fn;
        m.roc_auc = roc_auc(N, probs + g, targets + g, G);
        if (m.roc_auc) {
            sum_auc += *m.roc_auc;
            ++auc_count;
        }
        if (m.support == 0) continue;
        m.precision = ratio(m.tp, m.tp + m.fp);
        m.recall = ratio(m.tp, m.tp + m.fn);
        m.f1 = ratio(2.0 * m.tp, 2.0 * m.tp + m.fp + m.fn);
        m.ap = average_precision(N, probs + g, targets + g, G);
        sum_p += *m.precision;
        sum_r += *m.recall;
        sum_f += *m.f1;
        sum_ap += *m.ap;
        ++r.genres_evaluated;
    }
    r.micro_precision = ratio(double(tp_all), double(tp_all + fp_all));
    r.micro_recall = ratio(double(tp_all), double(tp_all + fn_all));
    r.micro_f1 = ratio(2.0 * double(tp_all), 2.0 * double(tp_all) + double(fp_all + fn_all));
    if (r.genres_evaluated > 0) {
        double k = r.genres_evaluated;
        r.macro_precision = sum_p / k;
        r.macro_recall = sum_r / k;
        r.macro_f1 = sum_f / k;
        r.macro_ap = sum_ap / k;
    }
    if (auc_count > 0) r.macro_roc_auc = sum_auc / auc_count;
    return r;
}

std::vector<float> aggregate_tracks(int N, int G, const float* chunk_values,
                                    const std::vector<int>& chunk_track, int T, Aggregation agg) {
    GNET_CHECK(int(chunk_track.size()) == N, "chunk_track must hold one track per chunk");
    std::vector<double> acc(size_t(T) * size_t(G), agg == Aggregation::Max ? -INFINITY : 0.0);
    std::vector<int> count(size_t(T), 0);
    for (int n = 0; n < N; ++n) {
        int t = chunk_track[size_t(n)];
        GNET_CHECK(t >= 0 && t < T, "chunk " + std::to_string(n) + " names track " +
                                        std::to_string(t) + " outside [0, " + std::to_string(T) +
                                        ")");
        ++count[size_t(t)];
        for (int g = 0; g < G; ++g) {
            double v = chunk_values[int64_t(n) * G + g];
            double& a = acc[size_t(t) * size_t(G) + size_t(g)];
            a = agg == Aggregation::Max ? std::max(a, v) : a + v;
        }
    }
    std::vector<float> out(acc.size());
    for (int t = 0; t < T; ++t) {
        GNET_CHECK(count[size_t(t)] > 0, "track " + std::to_string(t) + " has no chunk");
        for (int g = 0; g < G; ++g) {
            double a = acc[size_t(t) * size_t(G) + size_t(g)];
            out[size_t(t) * size_t(G) + size_t(g)] =
                float(agg == Aggregation::Mean ? a / count[size_t(t)] : a);
        }
    }
    return out;
}

std::vector<float> tune_thresholds(int N, int G, const float* probs, const float* targets) {
    std::vector<float> out(size_t(G), 0.5f);
    if (N <= 0) return out;
    check_labels(N * G, targets, 1);
    check_scores(N, G, probs);
    for (int g = 0; g < G; ++g) {
        const float* s = probs + g;
        const float* l = targets + g;
        int64_t positives = 0;
        for (int n = 0; n < N; ++n)
            positives += is_positive(l[int64_t(n) * G]);
        if (positives == 0) continue;
        std::vector<int> idx = order_descending(N, s, G);
        // Sweep down through groups of equal scores; after each group, "score >= group score"
        // predicts exactly the samples seen so far. Best = max F1 = 2tp / (2tp + fp + fn); with
        // fn = P - tp and fp = seen - tp the denominator is seen + P.
        int64_t tp = 0, seen = 0;
        int64_t best_num = -1, best_den = 1;
        float best_t = 0.5f;
        for (int i = 0; i < N;) {
            float score = s[int64_t(idx[size_t(i)]) * G];
            while (i < N && s[int64_t(idx[size_t(i)]) * G] == score) {
                tp += is_positive(l[int64_t(idx[size_t(i)]) * G]);
                ++seen;
                ++i;
            }
            int64_t num = 2 * tp, den = seen + positives;
            // Strictly better only: on a tie the earlier (higher) candidate stays.
            if (num * best_den > best_num * den) {
                best_num = num;
                best_den = den;
                if (i < N) {
                    float lower = s[int64_t(idx[size_t(i)]) * G];
                    float mid = float(0.5 * (double(score) + double(lower)));
                    best_t = mid > lower ? mid : score;  // adjacent floats: keep "score >= t" exact
                } else {
                    best_t = score;
                }
            }
        }
        out[size_t(g)] = best_t;
    }
    return out;
}

std::string format_metrics_table(const MetricsReport& r, const std::vector<std::string>& genres) {
    GNET_CHECK(genres.size() == r.per_genre.size(),
               "format_metrics_table: " + std::to_string(genres.size()) + " genre names for " +
                   std::to_string(r.per_genre.size()) + " genres");
    size_t width = 11;  // "macro avg" + margin
    for (const std::string& g : genres)
        width = std::max(width, g.size() + 2);
    auto cell = [](const std::optional<double>& v) {
        char buf[32];
        if (v)
            std::snprintf(buf, sizeof buf, "%10.3f", *v);
        else
            std::snprintf(buf, sizeof buf, "%10s", "n/a");
        return std::string(buf);
    };
    auto row = [&](const std::string& name, const std::string& support,
                   const std::optional<double>& p, const std::optional<double>& rc,
                   const std::optional<double>& f, const std::optional<double>& ap,
                   const std::optional<double>& auc) {
        std::string line = name + std::string(width - std::min(width, name.size()), ' ');
        char buf[32];
        std::snprintf(buf, sizeof buf, "%8s", support.c_str());
        line += buf;
        line += cell(p) + cell(rc) + cell(f) + cell(ap) + cell(auc) + "\n";
        return line;
    };
    std::string out = std::string("genre") + std::string(width - 5, ' ');
    char head[96];
    std::snprintf(head, sizeof head, "%8s%10s%10s%10s%10s%10s\n", "support", "precision", "recall",
                  "F1", "AP", "ROC-AUC");
    out += head;
    int64_t total_support = 0;
    for (size_t g = 0; g < genres.size(); ++g) {
        const GenreMetrics& m = r.per_genre[g];
        total_support += m.support;
        out +=
            row(genres[g], std::to_string(m.support), m.precision, m.recall, m.f1, m.ap, m.roc_auc);
    }
    out += row("micro avg", std::to_string(total_support), r.micro_precision, r.micro_recall,
               r.micro_f1, std::nullopt, std::nullopt);
    std::optional<double> mp, mr, mf;
    if (r.genres_evaluated > 0) {
        mp = r.macro_precision;
        mr = r.macro_recall;
        mf = r.macro_f1;
    }
    out += row("macro avg", std::to_string(total_support), mp, mr, mf, r.macro_ap, r.macro_roc_auc);
    out += std::to_string(r.samples) + " samples; " + std::to_string(r.genres_evaluated) + " of " +
           std::to_string(genres.size()) +
           " genres have positives (n/a = no positive or no negative sample)\n";
    return out;
}

}  // namespace gnet
