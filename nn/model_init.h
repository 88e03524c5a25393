// Initial ResNet18 states as state_dicts (torchvision names, order, shapes and dtypes), ready for
// ResNet18::load_state_dict.
//
// resnet18_init_state: torchvision's initialisation from a seeded RNG that does not depend on
// the standard library's distributions: std::mt19937_64, uniform doubles from its top 53 bits,
// normals by Box-Muller. Conv weights: Kaiming normal, mode fan_out, relu gain
// (std = sqrt(2 / (OC*KH*KW))); BN weight 1, bias 0, running_mean 0, running_var 1,
// num_batches_tracked 0; fc weight and bias: PyTorch's Linear default,
// uniform(-1/sqrt(in), 1/sqrt(in)). The values are gnet's own (PyTorch's RNG is not reproduced).
//
// resnet18_pattern_state and the pattern_* inputs: a closed-form state that PyTorch can compute
// too (tests/fixtures/make_resnet18_fixtures.py), so gnet is compared with torchvision without
// committing 45 MB of weights. For state_dict entry k (0-based, in order) and flat element i,
// s = sin(0.37*i + 0.91*k) in double, then rounded to float:
//   conv weight  s * 2/sqrt(C*KH*KW)        BN weight 1 + 0.2*s        BN bias 0.1*s
//   running_mean 0.05*s                     running_var 1 + 0.25*(1 + s)
//   num_batches_tracked k                   fc.weight s/sqrt(512)      fc.bias 0.1*s
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "nn/safetensors.h"

namespace gnet {

class InitRng {
public:
    explicit InitRng(uint64_t seed) : engine_(seed) {}
    double uniform();  // [0, 1), 53 random bits
    double normal();   // standard normal (Box-Muller, both values of a pair used in turn)

private:
    std::mt19937_64 engine_;
    bool have_spare_ = false;
    double spare_ = 0;
};

StFile resnet18_init_state(int num_genres, uint64_t seed);
StFile resnet18_pattern_state(int num_genres);

// Pattern batch: x (N, 1, H, W) flat i: 0.5 + 0.5*sin(0.011*i)*cos(0.0037*i);
// targets (N, G) flat j: 1 when j % 3 == 0 else 0; pos_weight (G): 1 + 0.25*g.
std::vector<float> pattern_input(int N, int H, int W);
std::vector<float> pattern_targets(int N, int G);
std::vector<float> pattern_pos_weight(int G);

}  // namespace gnet
