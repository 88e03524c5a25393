// Multi-label metrics over (N samples x G genres): probabilities `probs` (N, G) row-major and 0/1
// targets `targets` (N, G) row-major. Pure CPU code, double accumulators, no NaN ever produced.
//
// Decisions: sample n is predicted positive for genre g when probs[n, g] >= thresholds[g].
//
// Definitions (sklearn's semantics where sklearn has them):
// - Per genre: tp, fp, fn; precision = tp / (tp + fp), recall = tp / (tp + fn),
//   F1 = 2 tp / (2 tp + fp + fn); a 0/0 ratio is 0 (sklearn's zero_division=0).
// - A genre with no positive sample in the data is "n/a": precision/recall/F1/AP/ROC-AUC are empty
//   optionals and the genre is left out of every macro average. ROC-AUC is also n/a for a genre
//   with no negative sample. Micro averages count tp/fp/fn over ALL genres (false positives of a
//   genre without positives are still errors).
// - Average precision (sklearn's average_precision_score): samples sorted by score, descending;
//   samples with EQUAL scores form one group that enters together (one threshold per distinct
//   score), so the order inside a tie never matters. AP = sum over groups of
//   (recall after the group - recall before) * precision after the group.
// - ROC-AUC: Mann-Whitney U / (P * Nneg): every (positive, negative) pair counts 1 when the
// positive
//   scores higher, 1/2 on a tie, 0 otherwise (computed from average ranks, O(N log N)).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "train/predict.h"  // Aggregation

namespace gnet {

struct GenreMetrics {
    int support = 0;    // positive samples
    int negatives = 0;  // negative samples
    int tp = 0, fp = 0, fn = 0;
    std::optional<double> precision, recall, f1;  // empty when support == 0
    std::optional<double> ap;                     // empty when support == 0
    std::optional<double> roc_auc;                // empty when support == 0 or negatives == 0
};

struct MetricsReport {
    int samples = 0;
    std::vector<GenreMetrics> per_genre;
    double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
    // Means over the genres with support > 0 (0 when there is none).
    double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
    std::optional<double> macro_ap;       // mean AP over genres with support > 0
    std::optional<double> macro_roc_auc;  // mean ROC-AUC over genres where it is defined
    int genres_evaluated = 0;             // genres with support > 0
};

// thresholds: G values, or empty for 0.5 everywhere. Targets must be 0 or 1 (an Error otherwise).
MetricsReport compute_metrics(int N, int G, const float* probs, const float* targets,
                              const std::vector<float>& thresholds = {});

// One genre (scores and 0/1 labels of N samples, any stride-1 arrays). Empty when undefined.
std::optional<double> average_precision(int N, const float* scores, const float* labels,
                                        int stride = 1);
std::optional<double> roc_auc(int N, const float* scores, const float* labels, int stride = 1);

// Track-level aggregation of chunk probabilities: chunk_track[n] in [0, T) names the track of chunk
// n. Mean: average of the track's chunks; Max: element-wise maximum. Result (T, G). Every track
// must own at least one chunk (an Error otherwise). Aggregation (Mean | Max) and aggregation_name
// come from train/predict.h, shared with gnet predict.
std::vector<float> aggregate_tracks(int N, int G, const float* chunk_values,
                                    const std::vector<int>& chunk_track, int T, Aggregation agg);

// Per genre, the threshold that maximises F1 on the given data. Candidates: the lowest score
// (every sample positive) and the midpoints between consecutive distinct scores (so each
// candidate selects a distinct non-empty set "score >= t"). F1 is compared exactly (integer
// cross-multiplication); on equal F1 the HIGHEST candidate wins (fewest positive decisions).
// A genre without positives keeps 0.5.
std::vector<float> tune_thresholds(int N, int G, const float* probs, const float* targets);

// The per-genre table as text: genre, support, precision, recall, F1, AP, ROC-AUC, then the micro
// and macro rows; n/a where undefined.
std::string format_metrics_table(const MetricsReport& report,
                                 const std::vector<std::string>& genres);

}  // namespace gnet
