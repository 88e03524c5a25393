#include "nn/arena.h"

#include "kernels/common.h"
#include "kernels/error.h"

namespace gnet {

Arena::Slot Arena::reserve(Shape shape) {
    GNET_CHECK(!allocated(), "Arena::reserve after allocate: plan every tensor first");
    int64_t n = shape_numel(shape);
    offsets_.push_back(total_);
    shapes_.push_back(std::move(shape));
    total_ += ceil_div(n, kAlignFloats) * kAlignFloats;
    return shapes_.size() - 1;
}

void Arena::allocate(Device device, Stream stream) {
    GNET_CHECK(!allocated(), "Arena::allocate called twice");
    storage_ = Tensor::empty({total_}, device);
    storage_.fill_zero(stream);
    allocated_ = true;
}

Tensor Arena::tensor(Slot slot) const {
    GNET_CHECK(slot < shapes_.size(), "Arena: no slot " + std::to_string(slot));
    GNET_CHECK(allocated_, "Arena::tensor before allocate");
    return Tensor::view(storage_.data() + offsets_[slot], shapes_[slot], storage_.device());
}

void Arena::zero(Stream stream) {
    storage_.fill_zero(stream);
}

}  // namespace gnet
