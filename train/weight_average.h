// An exponential moving average (EMA) of a model's weights, the model that training saves and
// validates when it is on (Polyak averaging; the "model EMA" of timm and torch.optim.swa_utils):
// after update t (0-based), every float tensor of the state_dict (parameters and BatchNorm running
// statistics) is
//   avg = d_t * avg + (1 - d_t) * current,     d_t = min(decay, (1 + t) / (10 + t))
// and the first update copies. The warm-up of d_t lets the average follow the fast early changes
// (with a few hundred steps, a fixed 0.999 would still remember the random initialisation);
// integer counters (num_batches_tracked) are copied from the current model.
// Works on host copies of the state_dict (StFile): 11M floats per update, a few milliseconds on
// the CPU, beside a training step of a second or more.
#pragma once

#include <cstdint>

#include "nn/safetensors.h"

namespace gnet {

class WeightAverage {
  public:
    explicit WeightAverage(float decay);  // decay in (0, 1)

    // d_t for update number t (0-based).
    float decay_at(int64_t t) const;
    // Folds `current` (a state_dict with the same tensors every time) into the average.
    void update(const StFile& current);

    int64_t updates() const { return updates_; }
    const StFile& state() const { return avg_; }
    // Restores an average saved with state() / updates() (for --resume).
    void restore(StFile state, int64_t updates);

  private:
    float decay_;
    int64_t updates_ = 0;
    StFile avg_;
};

}  // namespace gnet
