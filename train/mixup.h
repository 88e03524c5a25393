// Mixup (Zhang et al. 2018) on a training batch: every sample i is blended with a partner p(i)
// from the same batch,
//   x'_i = lambda * x_i + (1 - lambda) * x_p(i)      y'_i = lambda * y_i + (1 - lambda) * y_p(i)
// with one lambda per batch drawn from Beta(alpha, alpha) and folded to max(lambda, 1 - lambda),
// so sample i stays the dominant one (its own labels remain the right ones for training F1).
// The partners are a random permutation of the batch. Both come from a generator seeded by the
// caller (the trainer uses (seed, epoch, batch index)), so a resumed run draws the same mixes.
// The soft targets go to BCE-with-logits, which accepts targets in [0, 1].
#pragma once

#include <cstdint>
#include <vector>

namespace gnet {

struct MixupDraw {
    float lambda = 1;          // in [0.5, 1]
    std::vector<int> partner;  // (n): a permutation of 0..n-1
};

// alpha > 0; n >= 1.
MixupDraw draw_mixup(int n, float alpha, uint64_t seed);

// x (n, sample_floats), y (n, G) -> x_out, y_out of the same shapes (=; may not alias the inputs).
void mixup_batch(int n, int64_t sample_floats, int G, const float* x, const float* y,
                 const MixupDraw& draw, float* x_out, float* y_out);

}  // namespace gnet
