#include "nn/network.h"

#include <atomic>

#include "kernels/error.h"
#include "nn/resnet18.h"
#include "nn/resnet18_bf16.h"

#if GNET_HAVE_CUDA
#include "kernels/conv2d_bf16.h"
#endif

namespace gnet {
namespace {
std::atomic<Precision> g_precision_choice{Precision::Auto};
}  // namespace

int Network::num_genres() const {
    return config().num_genres;
}

Tensor Network::features() const {
    throw Error("this model does not expose its pooled features (use --precision fp32)");
}

void Network::begin_train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                               AdamParams adam) {
    GNET_CHECK(finished_.size() < 2, "begin_train_step: two steps are in flight already");
    FinishedStep f;
    f.loss = train_step(x, targets, pos_weight, adam);
    f.logits = logits().to_host();
    finished_.push_back(std::move(f));
}

float Network::finish_train_step(std::vector<float>* logits) {
    GNET_CHECK(!finished_.empty(), "finish_train_step: no step was begun");
    FinishedStep f = std::move(finished_.front());
    finished_.pop_front();
    if (logits) *logits = std::move(f.logits);
    return f.loss;
}

void Network::set_backbone_frozen(bool) {
    throw Error("this model cannot freeze its backbone (use --precision fp32)");
}

Precision parse_precision(const std::string& text) {
    if (text == "auto") return Precision::Auto;
    if (text == "fp32") return Precision::Fp32;
    if (text == "bf16") return Precision::Bf16;
    throw Error("unknown precision '" + text + "' (expected auto, fp32 or bf16)");
}

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::Auto:
            return "auto";
        case Precision::Fp32:
            return "fp32";
        case Precision::Bf16:
            return "bf16";
    }
    return "?";
}

void set_precision_choice(Precision p) {
    g_precision_choice = p;
}

Precision precision_choice() {
    return g_precision_choice;
}

Precision resolve_precision(Precision wanted, Device device) {
    if (wanted == Precision::Auto) wanted = precision_choice();
    bool gpu_bf16 = false;
#if GNET_HAVE_CUDA
    if (device == Device::CUDA) gpu_bf16 = gpu::bf16_supported();
#endif
    if (wanted == Precision::Auto) return gpu_bf16 ? Precision::Bf16 : Precision::Fp32;
    if (wanted == Precision::Bf16 && device == Device::CUDA && !gpu_bf16)
        throw Error(
            "--precision bf16 needs a GPU with bf16 tensor cores (compute capability 8.0 "
            "or later); use --precision fp32 on this one");
    return wanted;
}

void Network::set_gradient_hook(GradientHook) {
    throw Error("this model does not support data-parallel training (no gradient hook)");
}

float* Network::gradient_data() {
    throw Error("this model does not support data-parallel training (no gradient array)");
}

int64_t Network::gradient_count() const {
    throw Error("this model does not support data-parallel training (no gradient array)");
}

std::unique_ptr<Network> make_network(const ResNet18Config& config, Device device, Stream stream) {
    if (resolve_precision(config.precision, device) == Precision::Bf16)
        return std::make_unique<ResNet18Bf16>(config, device, stream);
    return std::make_unique<ResNet18>(config, device, stream);
}

}  // namespace gnet
