#include "nn/network.h"

#include "nn/resnet18.h"

namespace gnet {

int Network::num_genres() const {
    return config().num_genres;
}

std::unique_ptr<Network> make_network(const ResNet18Config& config, Device device, Stream stream) {
    return std::make_unique<ResNet18>(config, device, stream);
}

}  // namespace gnet
