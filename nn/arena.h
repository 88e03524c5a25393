// Arena: many tensors planned once, allocated in one block, handed out as views.
//
// Planning happens before allocation (reserve() returns a slot), so a training step never
// allocates: parameters, gradients, Adam moments and activations each live in one arena with the
// same layout. Every slot starts on a 256-byte boundary (coalesced, vector-load friendly); the
// padding between slots is zero, so an element-wise op over the whole arena (Adam) is harmless.
#pragma once

#include <cstddef>
#include <vector>

#include "nn/tensor.h"

namespace gnet {

class Arena {
  public:
    using Slot = size_t;
    static constexpr int64_t kAlignFloats = 64;  // 256 bytes

    Slot reserve(Shape shape);  // only before allocate()
    // Once; zero-filled on `stream` (so ordered before the work queued there after it).
    void allocate(Device device, Stream stream = nullptr);
    Tensor tensor(Slot slot) const;      // a view; only after allocate()
    void zero(Stream stream = nullptr);  // every element, padding included

    bool allocated() const { return allocated_; }
    size_t slot_count() const { return shapes_.size(); }
    int64_t offset(Slot slot) const { return offsets_.at(slot); }
    int64_t numel() const { return total_; }  // floats in the block, padding included
    float* data() const { return storage_.data(); }
    Device device() const { return storage_.device(); }

  private:
    std::vector<Shape> shapes_;
    std::vector<int64_t> offsets_;
    int64_t total_ = 0;
    Tensor storage_;
    bool allocated_ = false;
};

}  // namespace gnet
