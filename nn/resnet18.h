// ResNet18 exactly as torchvision builds it, with a 1-channel stem and one output per genre:
//   conv1 7x7/2 pad 3 (no bias) -> bn1 -> relu -> maxpool 3x3/2 pad 1
//   -> layer1..layer4: BasicBlocks [2, 2, 2, 2], 64-128-256-512 channels; the first block of
//      layers 2-4 has stride 2 and a downsample (conv 1x1/2 + BN) on the identity path
//   -> global average pool -> fc (512 -> G, with bias).
// A BasicBlock is conv1 3x3/s -> bn1+relu -> conv2 3x3/1 -> bn2 + identity -> relu; the ReLUs and
// the residual add are the fused epilogues of batchnorm (Relu, AddRelu; downsample BN: None).
// BatchNorm eps 1e-5, momentum 0.1.
//
// Memory: parameters, their gradients and the two Adam moments are four arenas with one layout
// (torchvision's named_parameters order), so Adam is one launch over the whole arena; BN running
// statistics live in a buffer arena; every activation, saved statistic, max-pool index, backward
// scratch and the GPU conv workspace live in an activation arena planned once for
// (max_batch, 1, height, width); backward rotates four block-sized gradient buffers and has two of
// the stem's size for the stem alone. Nothing is allocated after construction: forward, backward,
// adam_step and train_step only use the arenas (on the GPU: no cudaMalloc, every op on `stream`).
//
// Inference (eval mode) has a memory plan of its own, device-generic: no saved activations, five
// block-sized buffers reused layer to layer (input/residual, conv1, bn1, conv2 or its fused
// output, downsample), the stem run in chunks of a few images so that its large 64-channel map
// is never held for the whole batch, and the pooled features and logits. A training model lays
// that plan over its (idle) training activation arena; an inference-only model
// (ResNet18Config::training = false) has no gradients, Adam moments or training activations at
// all, and allocates its inference buffers for the largest batch it has been given so far. On the
// fast CPU backend every batch norm of an eval pass is folded into its convolution (w * gamma /
// sqrt(var + eps), bias beta - mean * gamma / sqrt(var + eps)) with ReLU and the residual add in
// the convolution's epilogue; the reference backend and the GPU run conv + batchnorm_forward_eval.
//
// Saved for backward (train mode): the input, every conv output (BN input), every BN output
// (its sign is the ReLU mask), BN batch mean / invstd, max-pool argmax, pooled features.
// backward() accumulates (+=) into the gradient arena: call zero_grad() before a new batch. With a
// gradient hook (data-parallel training), backward calls it after fc, after each BasicBlock and
// after the stem with the arena offset of the first parameter now final (Network's contract).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/adam.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "nn/arena.h"
#include "nn/layers.h"
#include "nn/network.h"
#include "nn/safetensors.h"
#include "nn/tensor.h"

namespace gnet {

struct ResNet18Config {
    int num_genres = 10;  // G: fc outputs
    // make_network's choice of model (nn/network.h); ResNet18 itself is always float32.
    Precision precision = Precision::Auto;
    int max_batch = 32;  // the arenas are planned for batches up to this size
    int height = 128;    // input (N, 1, height, width): n_mels x frames
    int width = 431;
    // torchvision's initialisation with this seed at construction; nullopt leaves the (zeroed)
    // arenas for load_state_dict / load_checkpoint to fill, skipping 11M random draws.
    std::optional<uint64_t> init_seed = 0;
    // false: inference only (predict, evaluate): no gradients, Adam moments or training
    // activations; forward() in eval mode only.
    bool training = true;
    // Device::CPU kernels (nn/layers.h); Fast falls back to Reference on a CPU without AVX2+FMA.
    CpuBackend cpu_backend = default_cpu_backend();
};

// One entry of torchvision's state_dict, in its order.
enum class StateKind { Parameter, Buffer, Counter };  // Counter: num_batches_tracked (I64, [])
struct StateEntry {
    std::string name;  // "conv1.weight", "layer2.0.downsample.1.running_var", "fc.bias", ...
    Shape shape;
    StateKind kind;
};
// The full state_dict layout of a 1-channel ResNet18 with `num_genres` outputs (122 entries).
std::vector<StateEntry> resnet18_state_layout(int num_genres);
// Checks a state_dict against that layout: every name present, no extra one, dtype (F32; I64 for
// num_batches_tracked) and shape; an Error naming the tensor and `source` otherwise. Returns the
// tensors in layout order.
std::vector<const StTensor*> check_state_dict(const StFile& state, int num_genres,
                                              const std::string& source);

// Checks an optimizer state (Network::optimizer_state's format) against a state layout: both
// moments of every parameter with its shape, a non-negative "step", nothing else (an Error
// naming the tensor and `source` otherwise). The moments in layout order, and the step.
struct OptimizerMoments {
    std::vector<std::pair<const StTensor*, const StTensor*>> moments;  // exp_avg, exp_avg_sq
    int64_t step = 0;
};
OptimizerMoments check_optimizer_state(const StFile& state, const std::vector<StateEntry>& layout,
                                       const std::string& source);

class ResNet18 : public Network {
  public:
    // Plans and allocates every arena on `device`; parameters start at torchvision's init with
    // config.init_seed (0 unless set; nullopt: all zero, for load_state_dict() to fill).
    ResNet18(const ResNet18Config& config, Device device, Stream stream = nullptr);
    ResNet18(const ResNet18&) = delete;
    ResNet18& operator=(const ResNet18&) = delete;

    const ResNet18Config& config() const override { return config_; }
    Device device() const override { return exec_.device; }
    CpuBackend cpu_backend() const { return exec_.cpu; }  // the effective one
    Stream stream() const override { return exec_.stream; }

    // Data-parallel training: see Network. The hook is called from backward().
    void set_gradient_hook(GradientHook hook) override { gradient_hook_ = std::move(hook); }
    float* gradient_data() override;
    int64_t gradient_count() const override { return grads_.numel(); }

    // torchvision's initialisation from a seeded RNG (std::mt19937_64 + Box-Muller): conv weights
    // Kaiming normal, fan_out, relu (std = sqrt(2 / (OC*KH*KW))); BN gamma 1, beta 0, running mean
    // 0, var 1, num_batches_tracked 0; fc weight and bias uniform(-1/sqrt(512), 1/sqrt(512)).
    // Also clears gradients, Adam moments and the Adam step count.
    void init(uint64_t seed);

    void set_mode(Mode mode) override { mode_ = mode; }
    Mode mode() const override { return mode_; }

    // x: (N, 1, height, width) on any device, 1 <= N <= max_batch. Train mode uses batch
    // statistics and updates the running statistics; eval mode uses the running statistics.
    // Returns a view of the logits (N, G) on the model's device (valid until the next forward).
    // An inference-only model runs eval mode whatever set_mode says.
    Tensor forward(const Tensor& x) override;
    // dlogits: (N, G) of the last forward (train mode), any device. Parameter gradients +=.
    void backward(const Tensor& dlogits);
    void zero_grad();
    // One Adam/AdamW update over every parameter, with p.step as given.
    void adam_step(const AdamParams& p);

    // zero_grad, forward (train mode), BCE-with-logits (mean over N*G, optional pos_weight (G)),
    // backward, Adam with step = adam_steps() + 1. Returns the loss (waits for the device).
    // targets: (N, G); x, targets, pos_weight on any device.
    float train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                     AdamParams adam) override;
    int64_t adam_steps() const override { return adam_steps_; }
    void set_adam_steps(int64_t steps) override { adam_steps_ = steps; }

    // torchvision's state_dict on the host, in its order (parameters, running statistics and
    // num_batches_tracked). load_state_dict checks every name, shape and dtype first (an Error
    // naming the tensor and `source`) and changes nothing when one is wrong; extra tensors are
    // an error too.
    StFile state_dict() const override;
    void load_state_dict(const StFile& state, const std::string& source) override;
    // Adam state: "exp_avg.<param>", "exp_avg_sq.<param>" (F32, parameter shapes) and "step"
    // (I64 scalar); checked like load_state_dict.
    StFile optimizer_state() const override;
    void load_optimizer_state(const StFile& state, const std::string& source) override;

    // Named views of the parameters / gradients (named_parameters order) and of the arenas.
    struct NamedTensor {
        std::string name;
        Tensor tensor;
    };
    std::vector<NamedTensor> parameters() const;
    std::vector<NamedTensor> gradients() const;
    // Views of everything the last forward saved for backward, batch N = that forward's: the
    // input, every conv and BN output, the BN batch means and inverse standard deviations, the
    // max-pool argmax (int32 bits in a float view, "maxpool.argmax"), the pooled features and the
    // logits. For tests and debugging: comparing two models layer by layer, or giving one model
    // the other's forward state before a backward.
    std::vector<NamedTensor> saved_activations() const;
    const Arena& parameter_arena() const { return params_; }
    const Arena& gradient_arena() const { return grads_; }
    const Arena& adam_m_arena() const { return adam_m_; }
    const Arena& adam_v_arena() const { return adam_v_; }
    const Arena& activation_arena() const { return acts_; }

    // A view of the logits (N, G) of the last forward (or train_step) on the model's device.
    Tensor logits() const override;
    // A view of the pooled features (N, 512) of the last forward.
    Tensor features() const override;
    void set_backbone_frozen(bool frozen) override { backbone_frozen_ = frozen; }
    bool backbone_frozen() const { return backbone_frozen_; }

  private:
    struct Conv {
        std::string name;
        int C, OC, K, stride, pad, H, W, OH, OW;
        Arena::Slot w;
        Conv2dParams params(int N) const;
    };
    struct Bn {
        std::string name;
        int C, HW;
        Arena::Slot gamma, beta;                // parameters (and gradients, same slots)
        Arena::Slot running_mean, running_var;  // buffers
        Arena::Slot save_mean, save_invstd;     // activations
        int64_t num_batches_tracked = 0;
    };
    struct Block {
        Conv conv1, conv2, ds_conv;
        Bn bn1, bn2, ds_bn;
        bool has_downsample = false;
        int C_in, H_in, W_in;
        // Activations: conv1 out, bn1 out, conv2 out, downsample conv out, downsample bn out, out.
        Arena::Slot a, b, c, d, e, out;
    };

    Conv make_conv(const std::string& name, int C, int OC, int K, int stride, int pad, int H,
                   int W);
    Bn make_bn(const std::string& name, int C, int HW);
    void plan();
    float* act(Arena::Slot s) const { return acts_.data() + acts_.offset(s); }
    float* param(Arena::Slot s) const { return params_.data() + params_.offset(s); }
    float* grad(Arena::Slot s) const { return grads_.data() + grads_.offset(s); }
    float* buffer(Arena::Slot s) const { return buffers_.data() + buffers_.offset(s); }
    int32_t* act_index(Arena::Slot s) const { return reinterpret_cast<int32_t*>(act(s)); }
    void conv_forward(const Conv& c, int N, const float* x, float* y);
    // Eval-mode passes on the inference plan (see the header comment).
    struct InferPlan {
        int N = 0;           // batch the plan holds
        int stem_chunk = 0;  // images per stem step
        int64_t x = 0, stem_a = 0, stem_b = 0, argmax = 0, pooled = 0, logits = 0, total = 0;
        int64_t buf[5] = {0, 0, 0, 0, 0};
    };
    InferPlan plan_inference(int N) const;
    float* inference_base(int N);
    Tensor forward_eval(const Tensor& x, int N);
    // Eval conv + bn (+ relu / + residual, relu): folded on the fast CPU backend, else unfused
    // through `tmp` (a buffer of y's size).
    void conv_bn_eval(const Conv& c, const Bn& bn, int N, BnEpilogue epi, const float* x,
                      const float* residual, float* tmp, float* y);
    void require_training(const char* what) const;
    void conv_backward(const Conv& c, int N, const float* x, const float* dy, float* dx);
    void bn_forward(Bn& bn, int N, BnEpilogue epi, const float* x, const float* residual, float* y);
    void bn_backward(const Bn& bn, int N, BnEpilogue epi, const float* x, const float* y,
                     const float* dy, float* dx, float* dresidual);
    int check_batch(const Tensor& t, const char* what, int64_t per_sample) const;
    std::vector<const Bn*> all_bns() const;
    std::vector<Bn*> all_bns();

    ResNet18Config config_;
    Exec exec_;
    Mode mode_ = Mode::Train;
    int last_batch_ = 0;
    bool have_train_forward_ = false;
    int64_t adam_steps_ = 0;

    Arena params_, grads_, adam_m_, adam_v_, buffers_, acts_;
    std::vector<StateEntry> layout_;
    std::vector<Arena::Slot> param_slots_;  // named_parameters order

    Conv conv1_;
    Bn bn1_;
    std::vector<Block> blocks_;  // layer1.0, layer1.1, ..., layer4.1
    Arena::Slot fc_w_ = 0, fc_b_ = 0;
    int stem_OH_ = 0, stem_OW_ = 0, pool_OH_ = 0, pool_OW_ = 0, final_HW_ = 0;
    Arena::Slot x_in_ = 0, c1_ = 0, y1_ = 0, pool_ = 0, argmax_ = 0, pooled_ = 0, logits_ = 0;
    Arena::Slot targets_ = 0, pos_weight_ = 0, loss_ = 0, dlogits_ = 0, workspace_ = 0;
    Arena::Slot scratch_[4] = {0, 0, 0, 0};  // backward: block-sized gradients, rotating
    Arena::Slot stem_scratch_[2] = {0, 0};   // backward of the stem (max-pool, bn1)
    size_t workspace_bytes_ = 0;
    Tensor infer_storage_;          // inference-only models: the inference plan's memory
    int infer_batch_ = 0;           // the batch infer_storage_ is planned for
    float* last_logits_ = nullptr;  // where the last forward wrote its logits
    float* last_pooled_ = nullptr;  // ... and its pooled features
    bool backbone_frozen_ = false;
    std::vector<float> fold_w_, fold_b_;  // fast CPU eval: one conv's folded weights and bias
    GradientHook gradient_hook_;
};

}  // namespace gnet
