// Transfer learning: starting a training run from the weights of another ResNet18 checkpoint
// (gnet train --init CHECKPOINT): a gnet checkpoint, or any torchvision-named ResNet18 state_dict
// saved as .safetensors (PyTorch's `module.` prefix of DataParallel is accepted).
//
// Every tensor of the new model whose name, dtype and shape match one in the file is taken from it
// (weights, BatchNorm running statistics, num_batches_tracked), with two adaptations:
//   conv1.weight  an RGB stem [64, 3, 7, 7] (ImageNet torchvision weights) is summed over its
//                 input channels into gnet's one-channel [64, 1, 7, 7] (the response to a grey
//                 image that is the same in every channel is kept);
//   fc.*          the head is kept when the checkpoint names the same genres in the same order,
//                 reordered when it names the same set in another order, and otherwise (other
//                 genres, another count, or no genre names at all) left at its fresh
//                 initialisation: re-initialised.
// The rest stays at the new model's initialisation, and the report says which tensors did.
// The optimizer state is not taken: a new run starts Adam afresh.
#pragma once

#include <string>
#include <vector>

#include "nn/network.h"

namespace gnet {

struct InitReport {
    std::string path;
    int loaded = 0;                          // tensors taken as they are
    std::vector<std::string> adapted;        // "conv1.weight: 3 input channels summed into 1"
    std::vector<std::string> reinitialised;  // tensors left at the fresh initialisation, and why
    std::vector<std::string> ignored;        // tensors in the file the model has no use for
    bool head_kept = false;
    std::string head_reason;  // why the head was kept, reordered or re-initialised
    // A few lines for the training log.
    std::string summary() const;
};

// Loads what fits of `path` into `model` (built for `genres`); an Error naming the file when it
// cannot be read or when nothing at all fits (not a ResNet18 checkpoint).
InitReport init_from_checkpoint(const std::string& path, const std::vector<std::string>& genres,
                                Network& model);

}  // namespace gnet
