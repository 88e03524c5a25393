// ResNet18Bf16: the same network as ResNet18 (nn/resnet18.h: torchvision's ResNet18 with a
// 1-channel stem) in mixed precision, the way the tensor-core kernels want it:
//   - activations and activation gradients bf16, channels-last (NHWC);
//   - float32 master weights, gradients and Adam moments, conv weights held as OHWI (a filter's
//     taps with the channels contiguous); Adam writes the bf16 copy of every weight in its pass,
//     and each conv's IHWO copy (for backward-data) is transposed from it;
//   - every convolution on conv2d_bf16 (tensor cores; batch-norm statistics from its epilogue),
//     batch norm + ReLU (+ residual add) in one pass, the fc layer and the loss in float32.
// On Device::CUDA it runs the gnet::gpu kernels; on Device::CPU the bf16-faithful CPU mode: the
// convolutions on the fast float32 backend with the same roundings (config.cpu_backend Fast), or
// the gnet::cpu twins, the plain-loop specification (Reference).
//
// The state_dict is torchvision's (float32, OIHW conv weights, the same 122 entries as ResNet18),
// so checkpoints move freely between the two precisions.
//
// On a GPU (a stream of its own unless one is given) the train step and the eval-mode forward
// run as CUDA graphs, captured on first use for each batch size and replayed with one launch:
// the step reads its input, targets and Adam scalars from device buffers that a second stream
// fills (two sets, so the next batch's copy overlaps the step before it), and writes its loss and
// logits to pinned host memory; the host waits only in finish_train_step. Without graphs (a
// gradient hook is set, GNET_CUDA_GRAPHS=0, GNET_SYNC_DEBUG=1, or the CPU) the same kernels run
// one by one.
//
// Memory: everything is allocated at construction for batches up to config.max_batch: parameter,
// gradient and moment arenas (float32), the bf16 weight copies, one activation arena with every
// saved conv output y and BN output z, four stem-sized gradient buffers backward rotates through,
// and one workspace sized for the largest conv/BN scratch. Nothing is allocated per step.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/batchnorm_bf16.h"
#include "kernels/conv2d_bf16.h"
#include "kernels/maxpool2d.h"
#include "nn/arena.h"
#include "nn/buffer.h"
#include "nn/cuda_graph.h"
#include "nn/layers.h"
#include "nn/network.h"
#include "nn/resnet18.h"

namespace gnet {

class ResNet18Bf16 : public Network {
  public:
    ResNet18Bf16(const ResNet18Config& config, Device device, Stream stream = nullptr);
    ResNet18Bf16(const ResNet18Bf16&) = delete;
    ResNet18Bf16& operator=(const ResNet18Bf16&) = delete;

    const ResNet18Config& config() const override { return config_; }
    Device device() const override { return exec_.device; }
    Stream stream() const override { return exec_.stream; }
    void set_mode(Mode mode) override { mode_ = mode; }

    // Data-parallel training: see Network. The hook is called from backward(), after fc, after
    // each residual block and after the stem (the gradient array is named_parameters order, its
    // conv weights OHWI: the ranks agree on the layout, which is all an all-reduce needs).
    void set_gradient_hook(GradientHook hook) override { gradient_hook_ = std::move(hook); }
    float* gradient_data() override;
    int64_t gradient_count() const override { return grads_.numel(); }
    Mode mode() const override { return mode_; }

    Tensor forward(const Tensor& x) override;
    Tensor logits() const override;
    Tensor features() const override;  // the pooled (N, 512) float32 features of the last forward
    // Frozen: backward stops after fc and Adam updates only fc (see Network).
    void set_backbone_frozen(bool frozen) override { backbone_frozen_ = frozen; }
    // dlogits (N, G) of the last forward (train mode), any device; parameter gradients +=.
    void backward(const Tensor& dlogits);
    void zero_grad();
    // Adam / AdamW over every parameter, then the bf16 (OHWI) and IHWO weight copies.
    void adam_step(const AdamParams& p);
    float train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                     AdamParams adam) override;
    void begin_train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                          AdamParams adam) override;
    float finish_train_step(std::vector<float>* logits) override;
    // Whether steps and eval-mode forwards run as CUDA graphs now (see above); tests turn them
    // off to compare the two ways.
    bool uses_graphs() const;
    void set_graphs_enabled(bool enabled);
    int64_t adam_steps() const override { return adam_steps_; }
    void set_adam_steps(int64_t steps) override { adam_steps_ = steps; }

    StFile state_dict() const override;
    void load_state_dict(const StFile& state, const std::string& source) override;
    StFile optimizer_state() const override;
    void load_optimizer_state(const StFile& state, const std::string& source) override;

    // Teacher forcing, for tests: everything the last forward of `other` (same configuration,
    // any device) saved for backward, copied into this model, so that a backward here starts
    // from exactly the activations and statistics `other` had.
    void copy_forward_state_from(const ResNet18Bf16& other);

    // Parameter gradients in torchvision's layout and names (conv weights OIHW), on the host.
    std::vector<std::pair<std::string, std::vector<float>>> gradients() const;

  private:
    struct Conv {
        std::string name;  // "layer1.0.conv1"
        int C, OC, K, stride, pad, H, W, OH, OW;
        Arena::Slot w;     // master weight (OHWI) in params_ (and grads_, m_, v_)
        Arena::Slot wt16;  // IHWO bf16 copy in weights16_
        Conv2dParams params(int N) const;
    };
    struct Bn {
        std::string name;  // "layer1.0.bn1"
        int C;
        int64_t HW;
        Arena::Slot gamma, beta, running_mean, running_var;
        Arena::Slot mean, invstd, sum, sum_sq;  // in acts_
        int64_t num_batches_tracked = 0;
    };
    struct Block {
        Conv conv1, conv2, down;
        Bn bn1, bn2, down_bn;
        bool has_down = false;
        Arena::Slot y1, z1, y2, yd, zd, out;  // bf16 activations (N, OH, OW, OC)
    };

    Conv make_conv(const std::string& name, int C, int OC, int K, int stride, int pad, int H,
                   int W);
    Bn make_bn(const std::string& name, int C, int64_t HW);
    Arena::Slot reserve_bf16(int64_t count);
    Bf16* bf16(Arena::Slot slot) const;
    float* f32(const Arena& a, Arena::Slot slot) const;
    Bf16* w16(const Conv& c) const;  // the OHWI bf16 copy of c's weight
    std::vector<const Bn*> all_bns() const;
    std::vector<Bn*> all_bns();
    std::vector<const Conv*> all_convs() const;

    // Forward pieces: conv (with the BN's statistics in train mode), then BN + epilogue.
    void conv_bn(const Conv& c, Bn& bn, int N, const Bf16* x, Bf16* y, BnEpilogue epi,
                 const Bf16* residual, Bf16* z);
    void refresh_weight_copies();  // bf16 OHWI and IHWO copies from the master weights
    // The work of forward and of a train step on device inputs (x32: (N, 1, H, W) float32),
    // queued on the model's stream without host synchronisation: what the graphs capture.
    // scalars: this step's Adam scalars in device memory (graphs), or null to use adam's.
    void forward_body(const float* x32, int N);
    void train_body(int N, const float* x32, const float* targets, const float* pos_weight,
                    const AdamParams& adam, const AdamScalars* scalars, float* out_host);
    void adam_body(const AdamParams& p, const AdamScalars* scalars);
    const CudaGraph& graph(int kind, int N, int parity, bool pos_weight,
                           const std::function<void()>& record);
    float direct_train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                            AdamParams adam);
    void require_training(const char* what) const;

    ResNet18Config config_;
    Exec exec_;
    Mode mode_ = Mode::Train;
    std::vector<StateEntry> layout_;
    std::map<std::string, Arena::Slot> param_slot_;   // layout name -> slot in params_
    std::map<std::string, Arena::Slot> buffer_slot_;  // running statistics in buffers_
    Arena params_, grads_, adam_m_, adam_v_, buffers_, acts_;
    Arena weights16_;  // the bf16 copy of params_ (same element indices) and the IHWO copies
    Arena::Slot params16_ = 0;
    int64_t adam_steps_ = 0;
    GradientHook gradient_hook_;
    bool backbone_frozen_ = false;

    Conv stem_;
    Bn stem_bn_;
    Pool2dParams pool_{};
    std::vector<Block> blocks_;
    Arena::Slot x16_, stem_y_, stem_z_, pool_out_, pool_argmax_, pooled_, logits_, dlogits_,
        dpooled_, targets_, pos_weight_, loss_;
    Arena::Slot grad_buf_[4];

    // The graph pipeline (GPU only). Graphs by (kind (0 train, 1 eval), N, input set, pos_weight
    // given, backbone frozen); two sets of step inputs and outputs, used in turn.
    OwnedStream own_stream_, copy_stream_;
    bool graphs_enabled_ = false;
    std::map<std::tuple<int, int, int, bool, bool>, CudaGraph> graphs_;
    AdamParams graph_adam_;  // the beta1, beta2, eps and mode the train graphs were captured with
    struct StepIo {
        Arena::Slot x, targets, pos_weight, scalars;  // device (acts_)
        PinnedBuffer scalars_host, out_host;          // AdamScalars; loss then logits (N, G)
        StreamEvent copied, done;  // inputs copied (copy stream); step done (model stream)
    };
    StepIo io_[2];
    struct InFlight {
        int set, N;
        bool direct;  // ran without graphs: loss and logits in direct_results_
    };
    std::deque<InFlight> in_flight_;
    std::deque<std::pair<float, std::vector<float>>> direct_results_;
    int next_set_ = 0;
    Arena::Slot workspace_;
    size_t workspace_bytes_ = 0;
    int last_batch_ = 0;
};

}  // namespace gnet
