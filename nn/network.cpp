#include "nn/network.h"

#include "kernels/error.h"
#include "nn/resnet18.h"

namespace gnet {

int Network::num_genres() const {
    return config().num_genres;
}

Tensor Network::features() const {
    throw Error("this model does not expose its pooled features");
}

void Network::set_backbone_frozen(bool) {
    throw Error("this model cannot freeze its backbone");
}

std::unique_ptr<Network> make_network(const ResNet18Config& config, Device device, Stream stream) {
    return std::make_unique<ResNet18>(config, device, stream);
}

}  // namespace gnet
