// Network: what training, evaluation and prediction need of a model, whatever its precision and
// device. ResNet18 (nn/resnet18.h: float32 on the CPU twins, the fast CPU backend or the GPU) is
// one; make_network() builds the one a configuration asks for. Checkpoints (nn/checkpoint.h)
// read and write any Network through its torchvision state_dict.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "nn/device.h"
#include "nn/safetensors.h"
#include "nn/tensor.h"

namespace gnet {

struct ResNet18Config;
enum class Mode { Train, Eval };

// Which arithmetic a model runs in (ResNet18Config::precision):
//   Fp32  ResNet18: float32 everywhere (the verification path; on the CPU the fast backend)
//   Bf16  ResNet18Bf16: bf16 tensor cores, float32 master weights (nn/resnet18_bf16.h); on the
//         CPU the bf16-faithful mode (the same roundings on the fast float32 kernels), for
//         checking the bf16 recipe's quality without a GPU
//   Auto  Bf16 on a GPU with bf16 tensor cores (sm_80 or later), Fp32 otherwise
enum class Precision { Auto, Fp32, Bf16 };
Precision parse_precision(const std::string& text);  // "auto", "fp32", "bf16"; else an Error
const char* precision_name(Precision p);
// The choice `--precision` made for this process; make_network uses it for configs left at Auto.
void set_precision_choice(Precision p);
Precision precision_choice();
// What `wanted` (Auto: precision_choice(), then the device) resolves to on `device`; an Error
// for Bf16 on a GPU without bf16 tensor cores.
Precision resolve_precision(Precision wanted, Device device);

class Network {
  public:
    virtual ~Network() = default;

    virtual const ResNet18Config& config() const = 0;
    virtual Device device() const = 0;
    int num_genres() const;

    virtual void set_mode(Mode mode) = 0;
    virtual Mode mode() const = 0;

    // x: (N, 1, height, width) on any device, 1 <= N <= config().max_batch. Returns a view of the
    // logits (N, G) on the model's device, valid until the next forward.
    virtual Tensor forward(const Tensor& x) = 0;
    // The logits of the last forward (or train_step).
    virtual Tensor logits() const = 0;
    // The globally pooled features (N, 512) of the last forward (the input of fc: what `gnet
    // embed` writes), on the model's device, valid until the next forward. The default throws.
    virtual Tensor features() const;
    // Frozen: train_step updates only the head (fc): backward stops after fc and Adam (weight
    // decay included) touches only fc's parameters; the backbone's weights stay as they are (its
    // BatchNorm running statistics still follow the batches in train mode, as in PyTorch with
    // requires_grad off). For transfer learning (gnet train --init --freeze-backbone-epochs).
    // The default throws.
    virtual void set_backbone_frozen(bool frozen);
    // One training step (zero_grad, forward in train mode, BCE-with-logits with optional
    // pos_weight (G), backward, Adam with step = adam_steps() + 1); returns the loss.
    virtual float train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                             AdamParams adam) = 0;
    // Pipelined training, what the trainer's loop uses: begin_train_step queues the step
    // train_step takes and returns once x, targets and pos_weight have been read (their memory
    // may then be reused); finish_train_step waits for the oldest begun step and returns its
    // loss, and its logits (N, G) on the host when `logits` is not null. Up to two steps may be
    // in flight (begin, begin, finish, begin, finish, ...), which lets a GPU model copy the next
    // batch in while the previous step computes; finish every begun step before any other call.
    // The defaults run train_step inside begin_train_step.
    virtual void begin_train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                                  AdamParams adam);
    virtual float finish_train_step(std::vector<float>* logits);
    virtual int64_t adam_steps() const = 0;
    virtual void set_adam_steps(int64_t steps) = 0;

    // torchvision's state_dict (float32 parameters and running statistics, int64 counters) and
    // the Adam state ("exp_avg.<param>", "exp_avg_sq.<param>", "step"); loading checks every
    // name, shape and dtype first and changes nothing when one is wrong (an Error naming `source`).
    virtual StFile state_dict() const = 0;
    virtual void load_state_dict(const StFile& state, const std::string& source) = 0;
    virtual StFile optimizer_state() const = 0;
    virtual void load_optimizer_state(const StFile& state, const std::string& source) = 0;

    // Data-parallel training (train/gradient_reducer.h). The parameter gradients are one array of
    // gradient_count() floats at gradient_data() on the model's device, in named_parameters
    // order, and backward completes them last layer first. With a hook set, train_step calls
    // hook(first) each time the gradients at [first, gradient_count()) are final for the step
    // (a suffix of the array each time: after fc, after each residual block, after the stem),
    // the last time with first = 0, and applies Adam only after that call returns; the hook may
    // rewrite the gradients (average them over the ranks). On the GPU the hook runs when the
    // work producing those gradients has been queued on stream(), not finished: whatever reads
    // them must be ordered after that stream, and the Adam step is queued after whatever the
    // hook queues on it. An empty hook removes it. Models that do not support this throw.
    using GradientHook = std::function<void(int64_t first)>;
    virtual void set_gradient_hook(GradientHook hook);
    virtual float* gradient_data();
    virtual int64_t gradient_count() const;
    virtual Stream stream() const { return nullptr; }

  private:
    struct FinishedStep {
        float loss;
        std::vector<float> logits;
    };
    std::deque<FinishedStep> finished_;  // the default begin/finish_train_step
};

// The model `config` describes (its precision resolved by resolve_precision), on `device`
// (asynchronous work on `stream` for CUDA).
std::unique_ptr<Network> make_network(const ResNet18Config& config, Device device,
                                      Stream stream = nullptr);

}  // namespace gnet
