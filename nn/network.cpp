#include "nn/network.h"

#include "kernels/error.h"
#include "nn/resnet18.h"

namespace gnet {

int Network::num_genres() const {
    return config().num_genres;
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
    return std::make_unique<ResNet18>(config, device, stream);
}

}  // namespace gnet
