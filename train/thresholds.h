// Decision thresholds chosen on the validation tracks, per policy:
//   Fixed     0.5 for every genre.
//   Global    one threshold for every genre: the value on a grid 0.05, 0.10, ..., 0.95 that
//             maximises macro F1 over the genres with positives (ties: the one nearest 0.5).
//   PerGenre  each genre its own F1-maximising threshold (train/metrics.h tune_thresholds).
//   Auto      PerGenre for the genres with at least `min_positives` positive validation tracks
//             (a threshold tuned on two positives is noise), Global for the others.
// The result says, per genre, which choice was made, so the trainer can report it.
#pragma once

#include <string>
#include <vector>

namespace gnet {

enum class ThresholdPolicy { Fixed, Global, Auto, PerGenre };
ThresholdPolicy parse_threshold_policy(const std::string& text);  // else UsageError
const char* threshold_policy_name(ThresholdPolicy p);

struct ThresholdChoice {
    std::vector<float> thresholds;  // (G)
    std::vector<bool> tuned;        // (G): true = the genre's own tuned threshold
    std::vector<int> positives;     // (G): positive validation samples per genre
    float global = 0.5f;            // the shared threshold (0.5 under Fixed and PerGenre)
};

// probs, targets: (N, G) row-major, targets 0/1.
ThresholdChoice choose_thresholds(int N, int G, const float* probs, const float* targets,
                                  ThresholdPolicy policy, int min_positives);

// One line per genre: "rock  0.412  tuned (9 positives)" or "world  0.350  global (1 positive)".
std::string describe_thresholds(const ThresholdChoice& choice,
                                const std::vector<std::string>& genres, ThresholdPolicy policy);

}  // namespace gnet
