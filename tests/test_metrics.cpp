// Multi-label metrics: a small case worked out by hand, perfect / inverted / tied predictions,
// brute-force oracles for AP and ROC-AUC, track aggregation, threshold tuning, the table.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <set>

#include "kernels/error.h"
#include "tests/check.h"
#include "train/metrics.h"

using namespace gnet;

namespace {

constexpr double kExact = 1e-12;  // metrics are ratios of small integers, computed in double

// The hand-worked 6 x 3 case (rows = samples, columns = rock, jazz, pop).
//
// rock  scores 0.9 0.8 0.8 0.3 0.3 0.1, labels 1 1 0 1 0 0 (two ties, each mixing a positive and a
// negative)
//   threshold 0.5 -> predicted samples 0,1,2: tp 2, fp 1, fn 1 -> P = R = F1 = 2/3
//   AP: group {0.9}: recall 1/3, precision 1 -> 1/3; group {0.8, 0.8}: recall 2/3, precision 2/3
//       -> 1/3 * 2/3 = 2/9; group {0.3, 0.3}: recall 1, precision 3/5 -> 1/3 * 3/5 = 1/5;
//       {0.1}: no new positive.  AP = 1/3 + 2/9 + 1/5 = 34/45
//   AUC: positives 0.9, 0.8, 0.3 against negatives 0.8, 0.3, 0.1:
//       0.9 -> 3; 0.8 -> 1/2 + 1 + 1 = 5/2; 0.3 -> 0 + 1/2 + 1 = 3/2; total 7 of 9 pairs -> 7/9
//   best F1 threshold: after 0.9: 2*1/(1+3) = 1/2; after 0.8: 4/6; after 0.3: 6/8 (best); after
//       0.1: 6/9 -> threshold = midpoint(0.3, 0.1) = 0.2
// jazz  no positive: n/a everywhere, left out of the macro averages; at 0.5 it has 2 false
//   positives (0.6, 0.7) which micro averages count.
// pop   scores 0.2 0.4 0.9 0.5 0.5 0.6, labels 0 0 1 0 1 0
//   threshold 0.5 -> predicted samples 2,3,4,5: tp 2, fp 2, fn 0 -> P 1/2, R 1, F1 4/6 = 2/3
//   AP: {0.9}: recall 1/2, precision 1 -> 1/2; {0.6}: no new positive; {0.5, 0.5}: recall 1,
//       precision 2/4 -> 1/2 * 1/2 = 1/4.  AP = 3/4
//   AUC: 0.9 beats all 4 negatives -> 4; 0.5 beats 0.2, 0.4, ties 0.5, loses to 0.6 -> 5/2;
//       13/2 of 8 pairs -> 13/16
//   best F1 threshold: after 0.9: 2/3; after 0.6: 2/4; after 0.5: 4/6 = 2/3 (tie: the higher
//       candidate stays) -> threshold midpoint(0.9, 0.6) = 0.75
// micro: tp 4, fp 1 + 2 + 2 = 5, fn 1 -> P 4/9, R 4/5, F1 8/14 = 4/7
// macro over rock and pop: P (2/3 + 1/2)/2 = 7/12, R (2/3 + 1)/2 = 5/6, F1 2/3,
//   mAP (34/45 + 3/4)/2 = 271/360, ROC-AUC (7/9 + 13/16)/2 = 229/288
const std::vector<float> kProbs = {
    0.9f, 0.6f, 0.2f,  //
    0.8f, 0.1f, 0.4f,  //
    0.8f, 0.2f, 0.9f,  //
    0.3f, 0.7f, 0.5f,  //
    0.3f, 0.1f, 0.5f,  //
    0.1f, 0.3f, 0.6f,  //
};
const std::vector<float> kTargets = {
    1, 0, 0,  //
    1, 0, 0,  //
    0, 0, 1,  //
    1, 0, 0,  //
    0, 0, 1,  //
    0, 0, 0,  //
};

// Independent oracles, O(N^2): AUC over all pairs; AP by enumerating distinct thresholds.
double brute_auc(const std::vector<float>& s, const std::vector<float>& l) {
    double wins = 0, pairs = 0;
    for (size_t i = 0; i < s.size(); ++i)
        for (size_t j = 0; j < s.size(); ++j)
            if (l[i] == 1 && l[j] == 0) {
                pairs += 1;
                wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            }
    return wins / pairs;
}

double brute_ap(const std::vector<float>& s, const std::vector<float>& l) {
    std::set<float, std::greater<float>> thresholds(s.begin(), s.end());
    double positives = 0;
    for (float v : l)
        positives += v;
    double ap = 0, prev_recall = 0;
    for (float t : thresholds) {
        double tp = 0, pred = 0;
        for (size_t i = 0; i < s.size(); ++i)
            if (s[i] >= t) {
                pred += 1;
                tp += l[i];
            }
        ap += (tp / positives - prev_recall) * (tp / pred);
        prev_recall = tp / positives;
    }
    return ap;
}

}  // namespace

TEST_CASE("metrics: hand-worked 6 x 3 case with ties and a genre without positives") {
    MetricsReport r = compute_metrics(6, 3, kProbs.data(), kTargets.data());
    REQUIRE(r.per_genre.size() == 3);
    const GenreMetrics& rock = r.per_genre[0];
    CHECK(rock.support == 3);
    CHECK(rock.tp == 2);
    CHECK(rock.fp == 1);
    CHECK(rock.fn == 1);
    CHECK(*rock.precision == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(*rock.recall == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(*rock.f1 == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(*rock.ap == doctest::Approx(34.0 / 45).epsilon(kExact));
    CHECK(*rock.roc_auc == doctest::Approx(7.0 / 9).epsilon(kExact));

    const GenreMetrics& jazz = r.per_genre[1];
    CHECK(jazz.support == 0);
    CHECK(jazz.fp == 2);
    CHECK_FALSE(jazz.precision.has_value());
    CHECK_FALSE(jazz.recall.has_value());
    CHECK_FALSE(jazz.f1.has_value());
    CHECK_FALSE(jazz.ap.has_value());
    CHECK_FALSE(jazz.roc_auc.has_value());

    const GenreMetrics& pop = r.per_genre[2];
    CHECK(*pop.precision == doctest::Approx(0.5).epsilon(kExact));
    CHECK(*pop.recall == doctest::Approx(1.0).epsilon(kExact));
    CHECK(*pop.f1 == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(*pop.ap == doctest::Approx(0.75).epsilon(kExact));
    CHECK(*pop.roc_auc == doctest::Approx(13.0 / 16).epsilon(kExact));

    CHECK(r.genres_evaluated == 2);
    CHECK(r.micro_precision == doctest::Approx(4.0 / 9).epsilon(kExact));
    CHECK(r.micro_recall == doctest::Approx(4.0 / 5).epsilon(kExact));
    CHECK(r.micro_f1 == doctest::Approx(4.0 / 7).epsilon(kExact));
    CHECK(r.macro_precision == doctest::Approx(7.0 / 12).epsilon(kExact));
    CHECK(r.macro_recall == doctest::Approx(5.0 / 6).epsilon(kExact));
    CHECK(r.macro_f1 == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(*r.macro_ap == doctest::Approx(271.0 / 360).epsilon(kExact));
    CHECK(*r.macro_roc_auc == doctest::Approx(229.0 / 288).epsilon(kExact));

    std::vector<float> t = tune_thresholds(6, 3, kProbs.data(), kTargets.data());
    REQUIRE(t.size() == 3);
    CHECK(t[0] == doctest::Approx(0.2f));
    CHECK(t[1] == 0.5f);  // no positive: keeps the default
    CHECK(t[2] == doctest::Approx(0.75f));
    // With the tuned thresholds rock reaches its best F1 of 3/4.
    MetricsReport tuned = compute_metrics(6, 3, kProbs.data(), kTargets.data(), t);
    CHECK(*tuned.per_genre[0].f1 == doctest::Approx(0.75).epsilon(kExact));
    CHECK(*tuned.per_genre[2].f1 == doctest::Approx(2.0 / 3).epsilon(kExact));
    CHECK(tuned.per_genre[2].tp == 1);  // 0.75 selects only the 0.9 sample
}

TEST_CASE("metrics: perfect, inverted and all-tied predictions") {
    const int N = 5;
    std::vector<float> labels = {1, 0, 1, 0, 0};
    std::vector<float> perfect = {0.9f, 0.1f, 0.8f, 0.2f, 0.3f};
    std::vector<float> inverted = {0.1f, 0.9f, 0.2f, 0.8f, 0.7f};
    std::vector<float> tied(5, 0.5f);
    MetricsReport p = compute_metrics(N, 1, perfect.data(), labels.data());
    CHECK(*p.per_genre[0].f1 == 1.0);
    CHECK(*p.per_genre[0].ap == 1.0);
    CHECK(*p.per_genre[0].roc_auc == 1.0);
    MetricsReport inv = compute_metrics(N, 1, inverted.data(), labels.data());
    CHECK(*inv.per_genre[0].f1 == 0.0);  // 0/0 precision is 0, no NaN
    CHECK(*inv.per_genre[0].precision == 0.0);
    CHECK(*inv.per_genre[0].roc_auc == 0.0);
    // desc: 3 negatives, then positives at ranks 4 (P 1/4) and 5 (P 2/5): 1/2 * 1/4 + 1/2 * 2/5
    CHECK(*inv.per_genre[0].ap == doctest::Approx(0.325).epsilon(kExact));
    MetricsReport tie = compute_metrics(N, 1, tied.data(), labels.data());
    CHECK(*tie.per_genre[0].roc_auc == 0.5);
    CHECK(*tie.per_genre[0].ap == doctest::Approx(2.0 / 5).epsilon(kExact));  // the prevalence

    // Only positives: AP 1, ROC-AUC undefined (no negative) and left out of the macro AUC.
    std::vector<float> ones = {1, 1};
    std::vector<float> s = {0.2f, 0.7f};
    MetricsReport all_pos = compute_metrics(2, 1, s.data(), ones.data());
    CHECK(*all_pos.per_genre[0].ap == 1.0);
    CHECK_FALSE(all_pos.per_genre[0].roc_auc.has_value());
    CHECK_FALSE(all_pos.macro_roc_auc.has_value());

    // No positive anywhere and no sample at all: nothing defined, nothing NaN.
    std::vector<float> zeros = {0, 0};
    MetricsReport none = compute_metrics(2, 1, s.data(), zeros.data());
    CHECK(none.genres_evaluated == 0);
    CHECK(none.macro_f1 == 0.0);
    CHECK_FALSE(none.macro_ap.has_value());
    MetricsReport empty = compute_metrics(0, 2, nullptr, nullptr);
    CHECK(empty.micro_f1 == 0.0);
}

TEST_CASE("metrics: AP and ROC-AUC agree with brute-force oracles on random data with ties") {
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 50; ++trial) {
        int N = 1 + int(rng() % 40);
        std::vector<float> s(static_cast<size_t>(N)), l(static_cast<size_t>(N));
        for (int i = 0; i < N; ++i) {
            s[size_t(i)] = float(rng() % 8) / 8.f;  // few distinct values: many ties
            l[size_t(i)] = float(rng() % 3 == 0);
        }
        double P = 0;
        for (float v : l)
            P += v;
        auto ap = average_precision(N, s.data(), l.data());
        auto auc = roc_auc(N, s.data(), l.data());
        CHECK(ap.has_value() == (P > 0));
        CHECK(auc.has_value() == (P > 0 && P < N));
        if (ap) CHECK(*ap == doctest::Approx(brute_ap(s, l)).epsilon(1e-12));
        if (auc) CHECK(*auc == doctest::Approx(brute_auc(s, l)).epsilon(1e-12));
    }
}

TEST_CASE("metrics: tuned thresholds reach the best F1 over every possible threshold") {
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 30; ++trial) {
        int N = 2 + int(rng() % 30);
        std::vector<float> s(static_cast<size_t>(N)), l(static_cast<size_t>(N));
        for (int i = 0; i < N; ++i) {
            s[size_t(i)] = float(rng() % 10) / 10.f;
            l[size_t(i)] = float(rng() % 2);
        }
        std::vector<float> t = tune_thresholds(N, 1, s.data(), l.data());
        MetricsReport tuned = compute_metrics(N, 1, s.data(), l.data(), t);
        if (!tuned.per_genre[0].f1) {
            CHECK(t[0] == 0.5f);
            continue;
        }
        double best = 0;
        for (float cand : s) {
            MetricsReport m = compute_metrics(N, 1, s.data(), l.data(), {cand});
            best = std::max(best, *m.per_genre[0].f1);
        }
        CHECK(*tuned.per_genre[0].f1 == doctest::Approx(best).epsilon(1e-12));
    }
    // Adjacent floats: the midpoint rounds onto the lower score, so the higher one is used.
    float a = 0.5f, b = std::nextafter(0.5f, 0.f);
    std::vector<float> s = {a, b}, l = {1, 0};
    std::vector<float> t = tune_thresholds(2, 1, s.data(), l.data());
    CHECK(t[0] > b);
    CHECK(t[0] <= a);
}

TEST_CASE("metrics: track aggregation by mean and max") {
    // 4 chunks (G = 2) of 2 tracks: chunks 0, 2 -> track 1; chunks 1, 3 -> track 0.
    std::vector<float> p = {0.1f, 0.9f, 0.4f, 0.2f, 0.3f, 0.5f, 0.8f, 0.6f};
    std::vector<int> track = {1, 0, 1, 0};
    std::vector<float> mean = aggregate_tracks(4, 2, p.data(), track, 2, Aggregation::Mean);
    std::vector<float> max = aggregate_tracks(4, 2, p.data(), track, 2, Aggregation::Max);
    GNET_CHECK_CLOSE(mean, (std::vector<float>{0.6f, 0.4f, 0.2f, 0.7f}),
                     (test::Tolerance{1e-7, 1e-6}));
    GNET_CHECK_CLOSE(max, (std::vector<float>{0.8f, 0.6f, 0.3f, 0.9f}), (test::Tolerance{0, 0}));
    CHECK_THROWS_AS(aggregate_tracks(4, 2, p.data(), track, 3, Aggregation::Mean),
                    Error);  // empty track
    CHECK_THROWS_AS(aggregate_tracks(4, 2, p.data(), {0, 1, 2, 0}, 2, Aggregation::Max), Error);
}

TEST_CASE("metrics: bad inputs are errors") {
    std::vector<float> s = {0.1f, 0.2f}, bad = {0.f, 0.5f};
    CHECK_THROWS_WITH_AS(compute_metrics(2, 1, s.data(), bad.data()), doctest::Contains("0 or 1"),
                         Error);
    CHECK_THROWS_AS(compute_metrics(2, 1, s.data(), s.data(), {0.5f, 0.5f}), Error);
}

TEST_CASE("metrics: per-genre table") {
    MetricsReport r = compute_metrics(6, 3, kProbs.data(), kTargets.data());
    std::string table = format_metrics_table(r, {"rock", "jazz", "pop"});
    INFO(table);
    CHECK(table.find("genre       support precision    recall        F1        AP   ROC-AUC\n") ==
          0);
    CHECK(table.find("rock              3     0.667     0.667     0.667     0.756     0.778") !=
          std::string::npos);
    CHECK(table.find("jazz              0       n/a       n/a       n/a       n/a       n/a") !=
          std::string::npos);
    CHECK(table.find("macro avg         5     0.583     0.833     0.667     0.753     0.795") !=
          std::string::npos);
    CHECK(table.find("micro avg         5     0.444     0.800     0.571       n/a       n/a") !=
          std::string::npos);
    CHECK(table.find("2 of 3 genres") != std::string::npos);
    CHECK_THROWS_AS(format_metrics_table(r, {"rock"}), Error);
}

TEST_CASE("metrics: no samples gives an all-n/a report, no pointer arithmetic on null (18.17)") {
    MetricsReport r = compute_metrics(0, 3, nullptr, nullptr);
    CHECK(r.samples == 0);
    CHECK(r.per_genre.size() == 3);
    CHECK(r.genres_evaluated == 0);
    CHECK_FALSE(r.macro_ap.has_value());
    CHECK(tune_thresholds(0, 2, nullptr, nullptr) == std::vector<float>{0.5f, 0.5f});
    CHECK_FALSE(average_precision(0, nullptr, nullptr).has_value());
    CHECK_FALSE(roc_auc(0, nullptr, nullptr).has_value());
}

TEST_CASE("metrics: NaN or infinite scores are an error, not an endless loop (18.2)") {
    const std::vector<float> p = {0.2f, std::nanf(""), 0.7f, 0.1f}, y = {0, 1, 1, 0};
    CHECK_THROWS_WITH_AS(compute_metrics(4, 1, p.data(), y.data()),
                         doctest::Contains("score of sample 1, genre 0 is NaN"), Error);
    CHECK_THROWS_AS(tune_thresholds(4, 1, p.data(), y.data()), Error);
    CHECK_THROWS_AS(average_precision(4, p.data(), y.data()), Error);
    const std::vector<float> inf = {0.2f, INFINITY, 0.7f, 0.1f};
    CHECK_THROWS_WITH_AS(roc_auc(4, inf.data(), y.data()), doctest::Contains("infinite"), Error);
}
